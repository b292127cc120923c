#include "train/task_eval.h"

#include <algorithm>

#include "common/error.h"
#include "data/pystr.h"
#include "train/squad_f1.h"

namespace zo2 {

EvalMetrics evaluate_task(ZoModel& model, const Task& task, const std::vector<TaskExample>& examples,
                          const TaskEvalOptions& opt, Collectives& comm, std::vector<std::string>* outputs) {
  if (outputs) outputs->assign(examples.size(), "");
  const std::vector<Example> train = train_forms(examples, opt.train_as_classification);
  if (!task.generation) {
    std::vector<Example> scored;
    for (const TaskExample& x : examples) scored.push_back(x.candidates);
    const bool same = opt.train_as_classification;  // then the training form is the scored one
    std::vector<int64_t> pred;
    EvalMetrics c = evaluate(model, scored, opt.batch, opt.batch_size, opt.compute_dtype, comm, &pred);
    EvalMetrics m = same ? c : evaluate(model, train, opt.batch, opt.batch_size, opt.compute_dtype, comm);
    int64_t hits = 0;
    for (size_t i = 0; i < examples.size(); ++i) {
      const std::vector<int64_t>& ok = examples[i].correct;
      hits += std::find(ok.begin(), ok.end(), pred[i]) != ok.end();
      if (outputs) (*outputs)[i] = std::to_string(pred[i]);
    }
    m.accuracy = examples.empty() ? -1 : static_cast<double>(hits) / examples.size();
    return m;
  }

  ZO2_REQUIRE(static_cast<bool>(opt.decode), "generation needs a tokenizer to decode its output");
  EvalMetrics m = evaluate(model, train, opt.batch, opt.batch_size, opt.compute_dtype, comm);
  GenerateOptions g = opt.generate;
  g.compute_dtype = opt.compute_dtype;
  std::vector<size_t> mine;
  for (size_t i = comm.rank(); i < examples.size(); i += comm.world()) mine.push_back(i);
  double sums[2] = {0, 0};  // F1 sum, examples
  for (size_t i = 0; i < mine.size(); i += opt.batch_size) {
    const size_t end = std::min(mine.size(), i + static_cast<size_t>(opt.batch_size));
    std::vector<std::vector<int64_t>> prompts;
    for (size_t k = i; k < end; ++k) prompts.push_back(examples[mine[k]].prompt);
    const Generated out = generate(model, prompts, g);
    for (size_t k = i; k < end; ++k) {
      // MeZO: decode(new tokens, skip_special_tokens=True).strip()
      const std::string text = py::strip(opt.decode(out.tokens[k - i]));
      sums[0] += squad_f1(text, examples[mine[k]].answers);
      sums[1] += 1;
      if (outputs) (*outputs)[mine[k]] = text;
    }
  }
  comm.allreduce_sum(sums, 2);
  m.f1 = sums[1] > 0 ? sums[0] / sums[1] : -1;
  return m;
}

}  // namespace zo2
