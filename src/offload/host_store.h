// The one owner of the host ("home") copies of the decoder blocks: each block one contiguous buffer,
// page-locked when CUDA is available so uploads and write-backs run on the copy engines.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "model/opt_config.h"
#include "offload/block_layout.h"

namespace zo2 {

class HostStore {
 public:
  // Buffers for the listed layers (the others stay unallocated: they live on the GPU).
  HostStore(const OptConfig& cfg, at::ScalarType storage, const std::vector<int64_t>& layers, bool pinned);

  const BlockLayout& layout() const { return layout_; }
  bool has(int64_t layer) const { return buffers_.at(layer).defined(); }
  const at::Tensor& buffer(int64_t layer) const;  // uint8 [layout().bytes]
  BlockWeights& block(int64_t layer);             // views into buffer(layer)
  int64_t bytes() const;                          // all buffers
  bool pinned() const { return pinned_; }
  // Frees a layer's buffer (its block moved to the GPU for good).
  void release(int64_t layer);

 private:
  BlockLayout layout_;
  std::vector<at::Tensor> buffers_;
  std::vector<BlockWeights> views_;
  bool pinned_;
};

}  // namespace zo2
