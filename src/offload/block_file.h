// The disk tier of the host store (docs/offload.md, "Disk tier"): the streamed blocks live in one file,
// for models whose blocks do not fit in host RAM. The kernel's page cache is the RAM tier: a block is
// read into a pinned staging buffer for its upload (read-ahead is requested one block early), and an
// updated block, written from its staging buffer, is pushed to the disk at once, so that its pages can
// be reclaimed (staging: OffloadModel). The host reads blocks in place through a shared mapping. The
// file is unlinked as soon as it is mapped: a crashed run leaves nothing behind (the weights are saved
// by checkpoints, never read back from this scratch file).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace zo2 {

class BlockFile {
 public:
  // Creates a file in `dir` with room for `layers` blocks of `block_bytes` (space reserved up front, so a
  // full disk fails here, naming the directory and the size, not later with SIGBUS).
  BlockFile(const std::string& dir, int64_t layers, int64_t block_bytes);
  ~BlockFile();
  BlockFile(const BlockFile&) = delete;
  BlockFile& operator=(const BlockFile&) = delete;

  // uint8 [block_bytes] view of block `layer` in the mapping (valid while this object lives).
  at::Tensor buffer(int64_t layer);
  // Start reading block `layer` from the disk now (asynchronous read-ahead).
  void will_need(int64_t layer) const;
  // Copies block `layer` into `dst` (uint8 [block_bytes], e.g. a pinned staging buffer), and `src` into
  // block `layer` then starts its write-out; several threads, so a block in the page cache moves at
  // memory speed and one on the disk is read with several requests in flight.
  void read(int64_t layer, const at::Tensor& dst) const;
  void write(int64_t layer, const at::Tensor& src) const;
  int64_t bytes() const { return static_cast<int64_t>(size_); }
  const std::string& path() const { return path_; }

 private:
  // Block `layer` was rewritten: start writing it to the disk now (asynchronous).
  void written(int64_t layer) const;

  std::string path_;
  int fd_ = -1;
  void* map_ = nullptr;
  size_t size_ = 0, block_ = 0;
  int64_t layers_ = 0;
};

// Sequential write (with fdatasync) and cold-cache read rates of a scratch file of `bytes` in `dir`.
struct DiskRates {
  double write_gbps = 0, read_gbps = 0;
};
DiskRates measure_disk_gbps(const std::string& dir, int64_t bytes = int64_t(1) << 30);

}  // namespace zo2
