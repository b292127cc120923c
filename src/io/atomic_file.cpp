#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/error.h"

namespace zo2 {

namespace fs = std::filesystem;

namespace {
std::string parent_dir(const std::string& path) {
  const fs::path p = fs::path(path).parent_path();
  return p.empty() ? "." : p.string();
}
}  // namespace

void fsync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ZO2_REQUIRE(fd >= 0, dir, ": cannot open directory: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  ZO2_REQUIRE(rc == 0, dir, ": fsync of the directory failed: ", std::strerror(err));
}

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  static std::atomic<unsigned> counter{0};
  const fs::path p(path);
  tmp_ = (p.parent_path() / ("." + p.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                             std::to_string(counter++)))
             .string();
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  ZO2_REQUIRE(fd_ >= 0, path, ": cannot create ", tmp_, ": ", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    ZO2_REQUIRE(w > 0, path_, ": write failed: ", std::strerror(errno));
    p += w;
    n -= static_cast<size_t>(w);
    written_ += static_cast<uint64_t>(w);
  }
}

namespace {
void sync_close_rename(int fd, const std::string& tmp, const std::string& path) {
  const bool synced = ::fsync(fd) == 0;
  const int err = errno;
  const bool closed = ::close(fd) == 0;
  ZO2_REQUIRE(synced, path, ": fsync failed: ", std::strerror(err));
  ZO2_REQUIRE(closed, path, ": close failed: ", std::strerror(errno));
  ZO2_REQUIRE(::rename(tmp.c_str(), path.c_str()) == 0, path, ": rename from ", tmp, " failed: ",
              std::strerror(errno));
  fsync_directory(parent_dir(path));
}
}  // namespace

void AtomicFile::commit() {
  const int fd = fd_;
  fd_ = -1;
  sync_close_rename(fd, tmp_, path_);
  tmp_.clear();
}

void publish_file(const std::string& tmp, const std::string& path) {
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  ZO2_REQUIRE(fd >= 0, tmp, ": cannot open: ", std::strerror(errno));
  sync_close_rename(fd, tmp, path);
}

void write_file_atomic(const std::string& path, const std::string& content) {
  AtomicFile f(path);
  f.write(content.data(), content.size());
  f.commit();
}

void copy_file_atomic(const std::string& from, const std::string& to) {
  struct Fd {
    int fd;
    ~Fd() {
      if (fd >= 0) ::close(fd);
    }
  } in{::open(from.c_str(), O_RDONLY | O_CLOEXEC)};
  ZO2_REQUIRE(in.fd >= 0, from, ": cannot open: ", std::strerror(errno));
  AtomicFile f(to);
  char buf[1 << 16];
  for (;;) {
    const ssize_t r = ::read(in.fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    ZO2_REQUIRE(r >= 0, from, ": read failed: ", std::strerror(errno));
    if (r == 0) break;
    f.write(buf, static_cast<size_t>(r));
  }
  f.commit();
}

void remove_file_durable(const std::string& path) {
  if (::unlink(path.c_str()) != 0) {
    ZO2_REQUIRE(errno == ENOENT, path, ": cannot remove: ", std::strerror(errno));
    return;
  }
  fsync_directory(parent_dir(path));
}

}  // namespace zo2
