#include "train/evaluate.h"

#include <limits>

namespace zo2 {

EvalMetrics evaluate(ZoModel& model, const std::vector<Example>& examples, const BatchOptions& opt,
                     int64_t batch_size, at::ScalarType compute_dtype, Collectives& comm,
                     std::vector<int64_t>* predictions) {
  c10::InferenceMode guard;
  PlainParams plain(compute_dtype);
  std::vector<size_t> mine;
  for (size_t i = comm.rank(); i < examples.size(); i += comm.world()) mine.push_back(i);
  std::vector<double> pred(predictions ? examples.size() : 0, 0.0);  // 1 + best candidate, 0 elsewhere
  double sums[4] = {0, 0, 0, 0};  // loss sum, examples, correct, classification examples
  for (size_t i = 0; i < mine.size();) {
    std::vector<const Example*> part;  // one kind of example per batch
    const size_t first = i;
    while (i < mine.size() && static_cast<int64_t>(part.size()) < batch_size &&
           (part.empty() || part.back()->is_classification() == examples[mine[i]].is_classification()))
      part.push_back(&examples[mine[i++]]);
    Batch b = make_batch(part, opt).to(model.device());
    at::Tensor lp = model.logprobs(plain, b);
    const double n = static_cast<double>(part.size());
    sums[0] += batch_loss(lp, b).item<double>() * n;
    sums[1] += n;
    if (b.kind == LossKind::kClassification) {
      at::Tensor scores = sequence_scores(lp, b.targets)[0];
      at::Tensor s2 = scores.index_select(0, b.cand.clamp_min(0).reshape(-1)).view(b.cand.sizes());
      s2 = s2.masked_fill(b.cand.lt(0), -std::numeric_limits<float>::infinity());
      at::Tensor best = s2.argmax(1);
      sums[2] += best.eq(b.gold).sum().item<double>();
      sums[3] += n;
      if (predictions) {
        best = best.to(at::kCPU);
        for (size_t k = 0; k < part.size(); ++k) pred[mine[first + k]] = 1.0 + best[k].item<double>();
      }
    }
  }
  comm.allreduce_sum(sums, 4);
  if (predictions) {
    if (!pred.empty()) comm.allreduce_sum(pred.data(), static_cast<int>(pred.size()));
    predictions->assign(pred.size(), -1);
    for (size_t k = 0; k < pred.size(); ++k) (*predictions)[k] = static_cast<int64_t>(pred[k]) - 1;
  }
  EvalMetrics m;
  m.examples = static_cast<int64_t>(sums[1]);
  m.loss = sums[1] > 0 ? sums[0] / sums[1] : 0;
  if (sums[3] > 0) m.accuracy = sums[2] / sums[3];
  return m;
}

}  // namespace zo2
