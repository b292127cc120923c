// A MeZO task's metric on a set of examples: accuracy by candidate scoring (a hit when the best
// candidate, by mean log-prob of its option tokens, is any correct one), or the F1 of greedy
// generations (SQuAD, DROP); and the loss of the training form, which is what MeZO's trainer
// evaluates on the dev set (the Hugging Face Trainer's eval_loss).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/collectives.h"
#include "data/task_data.h"
#include "train/evaluate.h"
#include "train/generate.h"

namespace zo2 {

struct TaskEvalOptions {
  BatchOptions batch;
  int64_t batch_size = 16;               // examples per forward (candidate scoring) or per generation batch
  at::ScalarType compute_dtype = at::kFloat;
  bool train_as_classification = true;   // the form whose loss is reported
  GenerateOptions generate;              // stop ids, max new tokens (compute_dtype is set from above)
  std::function<std::string(const std::vector<int64_t>&)> decode;  // generated ids -> text, special tokens skipped
};

// Examples are sharded over ranks as in evaluate(). `outputs`, when given, receives per example the
// index of the best candidate (every example), or the generated text (generation tasks: the examples
// this rank handled, "" for the others).
EvalMetrics evaluate_task(ZoModel& model, const Task& task, const std::vector<TaskExample>& examples,
                          const TaskEvalOptions& opt, Collectives& comm, std::vector<std::string>* outputs = nullptr);

}  // namespace zo2
