#include "model/loss.h"

#include <limits>

#include "common/error.h"

namespace zo2 {

Batch Batch::to(const at::Device& device) const {
  Batch b = *this;
  b.ids = ids.to(device);
  b.mask = mask.to(device);
  b.attn = make_attn_mask(b.mask);
  b.targets.rows = targets.rows.to(device);
  b.targets.targets = targets.targets.to(device);
  b.targets.seq = targets.seq.to(device);
  if (cand.defined()) b.cand = cand.to(device);
  if (gold.defined()) b.gold = gold.to(device);
  return b;
}

at::Tensor sequence_scores(const at::Tensor& logprobs, const TokenTargets& t) {
  const int64_t nb = logprobs.size(0);
  at::Tensor sum = at::zeros({nb, t.batch}, logprobs.options()).index_add_(1, t.seq, logprobs);
  at::Tensor count = at::zeros({t.batch}, logprobs.options()).index_add_(0, t.seq, at::ones_like(t.seq, logprobs.options()));
  return sum / count.clamp_min(1);
}

at::Tensor batch_loss(const at::Tensor& logprobs, const Batch& b) {
  if (b.kind == LossKind::kTokenMean) return -logprobs.mean(1);
  const int64_t nb = logprobs.size(0), X = b.cand.size(0), C = b.cand.size(1);
  at::Tensor scores = sequence_scores(logprobs, b.targets);                  // [nb, B]
  at::Tensor idx = b.cand.clamp_min(0).reshape(-1);
  at::Tensor s = scores.index_select(1, idx).view({nb, X, C});
  s = s.masked_fill(b.cand.lt(0).unsqueeze(0), -std::numeric_limits<float>::infinity());
  at::Tensor gold = s.gather(2, b.gold.view({1, X, 1}).expand({nb, X, 1})).squeeze(2);
  return (at::logsumexp(s, {2}) - gold).mean(1);
}

}  // namespace zo2
