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
  int64_t examples = 0;
};

// Each rank scores examples rank, rank + world, ...; the sums are all-reduced.
EvalMetrics evaluate(ZoModel& model, const std::vector<Example>& examples, const BatchOptions& opt,
                     int64_t batch_size, at::ScalarType compute_dtype, Collectives& comm);

}  // namespace zo2
