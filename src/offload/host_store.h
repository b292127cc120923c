// The one owner of the host ("home") copies of the decoder blocks: each block one contiguous buffer,
// page-locked when CUDA is available so uploads and write-backs run on the copy engines. With a
// NodeShare the blocks it holds live in the node's shared segment instead (one copy per node); with a
// BlockFile they live in a memory-mapped file (the disk tier, not page-locked: OffloadModel copies
// through pinned staging buffers).
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "model/opt_config.h"
#include "offload/block_file.h"
#include "offload/block_layout.h"
#include "offload/node_share.h"

namespace zo2 {

class HostStore {
 public:
  // Buffers for the listed layers (the others stay unallocated: they live on the GPU). Layers that
  // `share` holds use its segment; with `file` the rest live in it; else they get private buffers.
  HostStore(const OptConfig& cfg, at::ScalarType storage, const std::vector<int64_t>& layers, bool pinned,
            std::shared_ptr<NodeShare> share = nullptr, std::shared_ptr<BlockFile> file = nullptr);

  const BlockLayout& layout() const { return layout_; }
  bool has(int64_t layer) const { return buffers_.at(layer).defined(); }
  const at::Tensor& buffer(int64_t layer) const;  // uint8 [layout().bytes]
  BlockWeights& block(int64_t layer);             // views into buffer(layer)
  int64_t bytes() const;                          // all buffers (shared ones included)
  bool pinned() const { return pinned_; }
  // Frees a layer's buffer (its block moved to the GPU for good).
  void release(int64_t layer);
  // The node's shared segment when the layer lives there, else nullptr.
  NodeShare* shared(int64_t layer) const { return share_ && share_->has(layer) ? share_.get() : nullptr; }
  // Whether this rank writes the layer's host copy (always, unless another rank of the node owns it).
  bool writer(int64_t layer) const { return shared(layer) == nullptr || share_->owns(layer); }
  // Disk tier hint (no-op in RAM): the block is uploaded soon.
  void will_need(int64_t layer) const;
  const BlockFile* file() const { return file_.get(); }

 private:
  BlockLayout layout_;
  std::vector<at::Tensor> buffers_;
  std::vector<BlockWeights> views_;
  bool pinned_;
  std::shared_ptr<NodeShare> share_;  // outlives the views into it
  std::shared_ptr<BlockFile> file_;   // likewise
};

}  // namespace zo2
