// The step loop: data order, micro-batches, MeZO steps, evaluation and metrics. Thin on purpose.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/collectives.h"
#include "data/example.h"
#include "train/evaluate.h"
#include "zo/lr_schedule.h"
#include "zo/mezo.h"

namespace zo2 {

struct TrainOptions {
  int64_t steps = 100;
  int64_t start_step = 0;          // resume point (data order and seeds follow from it)
  int64_t batch_size = 16;         // examples per rank per micro-batch
  int64_t micro_batches = 1;       // gradient accumulation under the same directions
  BatchOptions batch;
  LrSchedule lr;
  uint64_t data_seed = 0;
  int64_t eval_every = 0;          // 0: only at the end (when an eval set is given)
  int64_t eval_batch_size = 16;
  // Dev evaluation in place of evaluate() on the eval set (tasks: accuracy over every correct
  // candidate, F1 of generations); the eval set may then be empty.
  std::function<EvalMetrics()> dev_eval;
  // Which evaluation is the best so far: the lowest loss (MeZO: the Hugging Face Trainer's default
  // metric_for_best_model) or the highest task metric (EvalMetrics::metric()).
  bool best_by_metric = false;
  // Called after an evaluation that is the best so far. Keeping that checkpoint is the caller's (the
  // checkpoint writer): the trainer only decides.
  std::function<void(int64_t step, const EvalMetrics&)> on_best_dev;
  std::string metrics_path;        // JSON lines; "" = none
  bool append_metrics = false;
  bool progress = true;
  int64_t log_every = 10;          // plain progress lines when not on a terminal
  int64_t checksum_every = 0;      // compare weight checksums across ranks every N steps (0: never)
  bool eval_at_start = false;      // evaluate before the first step too (zero-shot)
};

// Throws zo2::Error naming the first option out of range (steps, batch sizes, intervals >= 0 or >= 1;
// learning rate finite and >= 0, warmup >= 0). train() calls it; the launcher too, before a model loads.
void check_train_options(const TrainOptions& opt);

// Throws zo2::Error naming the first rank and block whose weights differ from rank 0's.
void check_replicas(ZoModel& model, Collectives& comm, int64_t step);

struct TrainSummary {
  int64_t steps = 0;
  int64_t skipped = 0;
  double first_loss = 0, last_loss = 0;
  double seconds = 0;
  EvalMetrics initial_eval;        // with eval_at_start
  EvalMetrics final_eval;
  EvalMetrics best_eval;   // the best evaluation (see TrainOptions::best_by_metric)
  int64_t best_step = -1;  // -1: no evaluation ran
};

// Called after each step (trajectory records, checkpoints), and after each evaluation.
using StepHook = std::function<void(const StepStats&)>;
using EvalHook = std::function<void(int64_t step, const EvalMetrics&)>;

TrainSummary train(MezoEngine& engine, ZoModel& model, const std::vector<Example>& train_set,
                   const std::vector<Example>& eval_set, const TrainOptions& opt, Collectives& comm,
                   at::ScalarType compute_dtype, const StepHook& on_step = {}, const EvalHook& on_eval = {});

}  // namespace zo2
