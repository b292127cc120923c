#include "zo/zo_model.h"

#include "common/checksum.h"

namespace zo2 {

at::Tensor ResidentModel::logprobs(ParamSource& src, const Batch& batch) {
  at::Tensor h = decoder_forward(cfg_, w_, src, batch.ids, batch.attn);
  return target_logprobs(cfg_, w_.outer, src, h, batch.targets);
}

void ResidentModel::flush(ZoParams& src) {
  for_each_param(cfg_, w_, [&](const ParamInfo& p, at::Tensor& t) { src.flush(p.id, t); });
}

void ResidentModel::visit_blocks(const std::function<void(int64_t, const BlockWeights&)>& fn) {
  for (int64_t l = 0; l < cfg_.layers; ++l) fn(l, w_.blocks[l]);
}

uint64_t outer_checksum(const OuterWeights& w) {
  uint64_t h = 0;
  for (int id = 0; id < OuterWeights::kSlots; ++id)
    if (w.slot(id).defined()) h = h * 1099511628211ull ^ tensor_checksum(w.slot(id));
  return h;
}

uint64_t block_checksum(const BlockWeights& w) {
  uint64_t h = 0;
  for (int s = 0; s < BlockWeights::kSlots; ++s) h = h * 1099511628211ull ^ tensor_checksum(w.slot(s));
  return h;
}

std::vector<uint64_t> ResidentModel::checksums() {
  std::vector<uint64_t> out{outer_checksum(w_.outer)};
  for (const BlockWeights& b : w_.blocks) out.push_back(block_checksum(b));
  return out;
}

}  // namespace zo2
