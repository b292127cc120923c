#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace zo2 {

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ZO2_REQUIRE(fd >= 0, path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw_error(path, ": not a regular file");
  }
  f->size_ = static_cast<uint64_t>(st.st_size);
  static const uint8_t kEmpty[8] = {};
  f->data_ = kEmpty;
  if (f->size_ > 0) {
    void* a = ::mmap(nullptr, f->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    ZO2_REQUIRE(a != MAP_FAILED, path, ": mmap failed: ", std::strerror(err));
    f->addr_ = a;
    f->data_ = static_cast<const uint8_t*>(a);
  } else {
    ::close(fd);
  }
  return f;
}

MappedFile::~MappedFile() {
  if (addr_) ::munmap(addr_, size_);
}

at::Tensor mapped_tensor(const std::shared_ptr<const MappedFile>& file, uint64_t offset, at::IntArrayRef shape,
                         at::ScalarType dtype) {
  const auto opts = at::TensorOptions().dtype(dtype);
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  if (numel == 0) return at::empty(shape, opts);
  void* p = const_cast<uint8_t*>(file->data()) + offset;
  const size_t elsize = c10::elementSize(dtype);
  if (reinterpret_cast<uintptr_t>(p) % elsize != 0) {
    at::Tensor t = at::empty(shape, opts);
    std::memcpy(t.data_ptr(), p, numel * elsize);
    return t;
  }
  auto keep = file;
  return at::from_blob(p, shape, [keep](void*) {}, opts);
}

}  // namespace zo2
