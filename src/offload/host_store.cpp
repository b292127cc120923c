#include "offload/host_store.h"

#include "common/error.h"
#include "common/device_queue.h"

namespace zo2 {

HostStore::HostStore(const OptConfig& cfg, at::ScalarType storage, const std::vector<int64_t>& layers, bool pinned,
                     std::shared_ptr<NodeShare> share, std::shared_ptr<BlockFile> file)
    : layout_(BlockLayout::make(cfg, storage)), buffers_(cfg.layers), views_(cfg.layers), pinned_(pinned && !file),
      share_(std::move(share)), file_(std::move(file)) {
  for (int64_t l : layers) {
    ZO2_REQUIRE(l >= 0 && l < cfg.layers, "host store: layer ", l, " out of range");
    buffers_[l] = shared(l) ? share_->buffer(l) : file_ ? file_->buffer(l) : alloc_host(layout_.bytes, pinned);
    ZO2_REQUIRE(buffers_[l].numel() == layout_.bytes, "host store: the shared segment's blocks have ",
                buffers_[l].numel(), " bytes, the layout ", layout_.bytes);
    views_[l] = layout_.view(buffers_[l]);
  }
}

const at::Tensor& HostStore::buffer(int64_t layer) const {
  TORCH_CHECK(buffers_.at(layer).defined(), "block ", layer, " has no host buffer");
  return buffers_[layer];
}

BlockWeights& HostStore::block(int64_t layer) {
  TORCH_CHECK(buffers_.at(layer).defined(), "block ", layer, " has no host buffer");
  return views_[layer];
}

int64_t HostStore::bytes() const {
  int64_t n = 0;
  for (const at::Tensor& b : buffers_)
    if (b.defined()) n += b.numel();
  return n;
}

void HostStore::will_need(int64_t layer) const {
  if (file_) file_->will_need(layer);
}

void HostStore::release(int64_t layer) {
  buffers_.at(layer) = at::Tensor();
  views_.at(layer) = BlockWeights{};
}

}  // namespace zo2
