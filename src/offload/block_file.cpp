#include "offload/block_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <vector>

#include <ATen/Parallel.h>

#include "common/error.h"

namespace zo2 {

namespace {

std::string scratch_path(const std::string& dir, const char* what) {
  ZO2_REQUIRE(std::filesystem::is_directory(dir), "--offload-dir ", dir, ": not a directory");
  return (std::filesystem::path(dir) / (std::string("zo2-") + what + "-" + std::to_string(getpid()) + ".bin")).string();
}

int create_file(const std::string& path, size_t size) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ZO2_REQUIRE(fd >= 0, path, ": cannot create: ", std::strerror(errno));
  const int e = size > 0 ? ::posix_fallocate(fd, 0, static_cast<off_t>(size)) : 0;
  if (e != 0) {
    ::close(fd);
    ::unlink(path.c_str());
    throw_error(path, ": cannot reserve ", static_cast<double>(size) / 1e9, " GB on the disk: ", std::strerror(e));
  }
  return fd;
}

}  // namespace

BlockFile::BlockFile(const std::string& dir, int64_t layers, int64_t block_bytes)
    : path_(scratch_path(dir, "blocks")), size_(static_cast<size_t>(layers * block_bytes)),
      block_(static_cast<size_t>(block_bytes)), layers_(layers) {
  fd_ = create_file(path_, size_);
  map_ = size_ > 0 ? ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0) : nullptr;
  const int e = errno;
  ::unlink(path_.c_str());  // gone with the last reference, also after a crash
  if (map_ == MAP_FAILED) {
    ::close(fd_);
    throw_error(path_, ": cannot map ", size_, " bytes: ", std::strerror(e));
  }
}

BlockFile::~BlockFile() {
  if (map_ && map_ != MAP_FAILED) ::munmap(map_, size_);
  if (fd_ >= 0) ::close(fd_);
}

at::Tensor BlockFile::buffer(int64_t layer) {
  ZO2_REQUIRE(layer >= 0 && layer < layers_, "block file: layer ", layer, " out of range");
  return at::from_blob(static_cast<uint8_t*>(map_) + static_cast<size_t>(layer) * block_, {static_cast<int64_t>(block_)},
                       at::TensorOptions().dtype(at::kByte));
}

void BlockFile::will_need(int64_t layer) const {
  if (layer < 0 || layer >= layers_ || block_ == 0) return;
  ::madvise(static_cast<uint8_t*>(map_) + static_cast<size_t>(layer) * block_, block_, MADV_WILLNEED);
}

void BlockFile::written(int64_t layer) const {
  if (layer < 0 || layer >= layers_ || block_ == 0) return;
  // Start the write-out now (no wait): dirty pages then never pile up to the kernel's limits mid-pass.
  ::sync_file_range(fd_, static_cast<off_t>(static_cast<size_t>(layer) * block_), static_cast<off_t>(block_),
                    SYNC_FILE_RANGE_WRITE);
}

namespace {
// `io(offset, bytes)` over [0, n) in 8 MiB chunks on LibTorch's intra-op threads: pread/pwrite copy
// between the page cache and the buffer without faulting pages into the mapping one at a time, and
// several requests keep a disk busy. Returns 0 or the first errno (EIO: the file ended early).
template <class Io>
int parallel_io(size_t n, Io&& io) {
  constexpr size_t kChunk = size_t(8) << 20;
  const int64_t chunks = static_cast<int64_t>((n + kChunk - 1) / kChunk);
  std::atomic<int> err{0};
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e && err.load() == 0; ++c) {
      for (size_t off = static_cast<size_t>(c) * kChunk, end = std::min(off + kChunk, n); off < end;) {
        const ssize_t k = io(off, end - off);
        if (k > 0) {
          off += static_cast<size_t>(k);
        } else if (k == 0 || errno != EINTR) {
          err = k < 0 ? errno : EIO;
          break;
        }
      }
    }
  });
  return err.load();
}
}  // namespace

void BlockFile::read(int64_t layer, const at::Tensor& dst) const {
  ZO2_REQUIRE(layer >= 0 && layer < layers_ && dst.numel() == static_cast<int64_t>(block_) && dst.is_contiguous(),
              "block file: bad read of layer ", layer);
  auto* p = static_cast<uint8_t*>(dst.data_ptr());
  const off_t base = static_cast<off_t>(static_cast<size_t>(layer) * block_);
  const int e = parallel_io(block_, [&](size_t off, size_t n) { return ::pread(fd_, p + off, n, base + static_cast<off_t>(off)); });
  ZO2_REQUIRE(e == 0, path_, " (deleted scratch file of --offload-dir): reading block ", layer, ": ", std::strerror(e));
}

void BlockFile::write(int64_t layer, const at::Tensor& src) const {
  ZO2_REQUIRE(layer >= 0 && layer < layers_ && src.numel() == static_cast<int64_t>(block_) && src.is_contiguous(),
              "block file: bad write of layer ", layer);
  const auto* p = static_cast<const uint8_t*>(src.data_ptr());
  const off_t base = static_cast<off_t>(static_cast<size_t>(layer) * block_);
  const int e = parallel_io(block_, [&](size_t off, size_t n) { return ::pwrite(fd_, p + off, n, base + static_cast<off_t>(off)); });
  ZO2_REQUIRE(e == 0, path_, " (deleted scratch file of --offload-dir): writing block ", layer, ": ", std::strerror(e));
  written(layer);
}

DiskRates measure_disk_gbps(const std::string& dir, int64_t bytes) {
  const std::string path = scratch_path(dir, "disk-rate");
  const size_t n = static_cast<size_t>(bytes), chunk = size_t(8) << 20;
  const int fd = create_file(path, 0);
  ::unlink(path.c_str());
  std::vector<uint8_t> buf(chunk, 0x5a);
  using clock = std::chrono::steady_clock;
  DiskRates r;
  auto t0 = clock::now();
  for (size_t off = 0; off < n; off += chunk) {
    const ssize_t w = ::pwrite(fd, buf.data(), std::min(chunk, n - off), static_cast<off_t>(off));
    if (w <= 0) {
      ::close(fd);
      throw_error(dir, ": writing the disk-rate file failed: ", std::strerror(errno));
    }
  }
  ::fdatasync(fd);
  r.write_gbps = static_cast<double>(n) / std::chrono::duration<double>(clock::now() - t0).count() / 1e9;
  ::posix_fadvise(fd, 0, static_cast<off_t>(n), POSIX_FADV_DONTNEED);  // clean pages leave the cache
  t0 = clock::now();
  for (size_t off = 0; off < n; off += chunk)
    if (::pread(fd, buf.data(), std::min(chunk, n - off), static_cast<off_t>(off)) <= 0) break;
  r.read_gbps = static_cast<double>(n) / std::chrono::duration<double>(clock::now() - t0).count() / 1e9;
  ::close(fd);
  return r;
}

}  // namespace zo2
