#include "offload/host_store.h"

#include "common/error.h"
#include "common/device_queue.h"

namespace zo2 {

HostStore::HostStore(const OptConfig& cfg, at::ScalarType storage, const std::vector<int64_t>& layers, bool pinned)
    : layout_(BlockLayout::make(cfg, storage)), buffers_(cfg.layers), views_(cfg.layers), pinned_(pinned) {
  for (int64_t l : layers) {
    ZO2_REQUIRE(l >= 0 && l < cfg.layers, "host store: layer ", l, " out of range");
    buffers_[l] = alloc_host(layout_.bytes, pinned);
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

void HostStore::release(int64_t layer) {
  buffers_.at(layer) = at::Tensor();
  views_.at(layer) = BlockWeights{};
}

}  // namespace zo2
