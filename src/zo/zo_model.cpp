#include "zo/zo_model.h"

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

}  // namespace zo2
