// Evaluation of the unperturbed model: mean loss, and accuracy where examples are classification
// (the candidate with the highest mean log-prob of its option tokens wins, as in MeZO).
#pragma once

#include <vector>

#include "common/collectives.h"
#include "data/example.h"
#include "zo/zo_model.h"

namespace zo2 {

struct EvalMetrics {
  double loss = 0;        // mean over examples of the example loss
  double accuracy = -1;   // -1 when no example is classification
  double f1 = -1;         // generation tasks (train/task_eval.h); -1 otherwise
  int64_t examples = 0;
  // The task's own metric: F1 where there is one, else accuracy (-1: neither).
  double metric() const { return f1 >= 0 ? f1 : accuracy; }
};

// Each rank scores examples rank, rank + world, ...; the sums are all-reduced. `predictions`, when given,
// receives on every rank the best-scoring candidate of each example (-1 for language-modelling ones).
EvalMetrics evaluate(ZoModel& model, const std::vector<Example>& examples, const BatchOptions& opt,
                     int64_t batch_size, at::ScalarType compute_dtype, Collectives& comm,
                     std::vector<int64_t>* predictions = nullptr);

}  // namespace zo2
