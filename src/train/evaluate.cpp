#include "train/evaluate.h"

#include <limits>

namespace zo2 {

EvalMetrics evaluate(ZoModel& model, const std::vector<Example>& examples, const BatchOptions& opt,
                     int64_t batch_size, at::ScalarType compute_dtype, Collectives& comm) {
  c10::InferenceMode guard;
  PlainParams plain(compute_dtype);
  std::vector<const Example*> mine;
  for (size_t i = comm.rank(); i < examples.size(); i += comm.world()) mine.push_back(&examples[i]);
  double sums[4] = {0, 0, 0, 0};  // loss sum, examples, correct, classification examples
  for (size_t i = 0; i < mine.size();) {
    std::vector<const Example*> part;  // one kind of example per batch
    while (i < mine.size() && static_cast<int64_t>(part.size()) < batch_size &&
           (part.empty() || part.back()->is_classification() == mine[i]->is_classification()))
      part.push_back(mine[i++]);
    Batch b = make_batch(part, opt).to(model.device());
    at::Tensor lp = model.logprobs(plain, b);
    const double n = static_cast<double>(part.size());
    sums[0] += batch_loss(lp, b).item<double>() * n;
    sums[1] += n;
    if (b.kind == LossKind::kClassification) {
      at::Tensor scores = sequence_scores(lp, b.targets)[0];
      at::Tensor s2 = scores.index_select(0, b.cand.clamp_min(0).reshape(-1)).view(b.cand.sizes());
      s2 = s2.masked_fill(b.cand.lt(0), -std::numeric_limits<float>::infinity());
      sums[2] += s2.argmax(1).eq(b.gold).sum().item<double>();
      sums[3] += n;
    }
  }
  comm.allreduce_sum(sums, 4);
  EvalMetrics m;
  m.examples = static_cast<int64_t>(sums[1]);
  m.loss = sums[1] > 0 ? sums[0] / sums[1] : 0;
  if (sums[3] > 0) m.accuracy = sums[2] / sums[3];
  return m;
}

}  // namespace zo2
