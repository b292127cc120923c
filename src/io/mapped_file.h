// A whole file mapped read-only into memory, and tensors that view it without copying.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>

namespace zo2 {

class MappedFile {
 public:
  // Throws zo2::Error naming `path` when it cannot be opened or mapped.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  const uint8_t* data() const { return data_; }  // never null, even for an empty file
  uint64_t size() const { return size_; }

 private:
  MappedFile() = default;
  std::string path_;
  void* addr_ = nullptr;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// A CPU tensor of `shape` x `dtype` over bytes [offset, offset + numel*elsize) of `file` (the caller has
// checked the range). It keeps the mapping alive. The mapping is copy-on-write, so a stray write changes
// private pages, never the file. Misaligned data (legal in both formats) is copied into an aligned buffer.
at::Tensor mapped_tensor(const std::shared_ptr<const MappedFile>& file, uint64_t offset, at::IntArrayRef shape,
                         at::ScalarType dtype);

}  // namespace zo2
