// MeZO-SGD (docs/zo.md): SPSA estimates g_k = (L(theta + eps z_k) - L(theta - eps z_k)) / (2 eps) along
// q directions, then theta <- theta - lr * ((1/n) sum_k g_k z_k + wd * theta). Ranks exchange only
// losses: data parallel ranks average them, perturbation-parallel groups each own q directions.
#pragma once

#include <cstdint>
#include <vector>

#include "common/collectives.h"
#include "zo/zo_model.h"
#include "zo/zo_params.h"

namespace zo2 {

struct MezoOptions {
  uint64_t seed = 0;               // run seed, the same on every rank
  int64_t q = 1;                   // directions per step (per perturbation group)
  float eps = 1e-3f;
  float weight_decay = 0.f;
  bool stochastic_round = true;    // for 16-bit weights
  int64_t perturbation_groups = 1; // P: rank r perturbs along the directions of group r % P
  int64_t group_dirs = 1;          // directions materialised per matrix pass (scratch = 2 x this)
  bool lookahead = false;          // GPU: copies of the next matrix written on a side stream (zo_params.h)
};

struct StepStats {
  int64_t step = 0;
  double loss = 0;                 // mean of (L+ + L-)/2 over directions and data ranks
  std::vector<double> loss_plus, loss_minus, grads;  // one per direction (all groups)
  double lr = 0;
  bool skipped = false;            // a non-finite loss: no update
};

class MezoEngine {
 public:
  MezoEngine(ZoModel& model, Collectives& comm, const MezoOptions& opt, at::ScalarType compute_dtype);

  // One step over `micro_batches` (gradient accumulation: the same directions for all of them).
  // The update is applied lazily, fused into the next step's perturbation pass (or flush()).
  StepStats step(int64_t step, const std::vector<Batch>& micro_batches, double lr);
  // Applies the pending update everywhere (before evaluation or saving).
  void flush();

  const Update& pending() const { return pending_; }
  void set_pending(const Update& up) { pending_ = up; }
  int64_t skipped_steps() const { return skipped_; }
  void set_skipped_steps(int64_t n) { skipped_ = n; }  // resume
  const MezoOptions& options() const { return opt_; }
  // Directions and update of step `step` from its losses (all ranks' pairs, rank-major): shared with replay.
  Update make_update(int64_t step, const std::vector<double>& all_losses, double lr, StepStats* stats) const;

 private:
  ZoModel& model_;
  Collectives& comm_;
  MezoOptions opt_;
  ZoParams params_;
  Update pending_;
  int64_t skipped_ = 0;
};

// Throws zo2::Error naming the first option out of range: q >= 1, eps finite and > 0, weight decay
// finite and >= 0 (an infinite or NaN value would make every loss or update NaN, and every step skipped),
// perturbation groups >= 1, q x groups within the kernels' direction limit.
void check_mezo_options(const MezoOptions& opt);

// The update of step `step` from its projected gradients g_d (d = 0..n-1, n = g.size()): key =
// step_key(seed, step), coef_d = float(g_d / n), lr as fp32, wd and rounding from `opt`. Empty (the step
// is skipped) when a g_d is not finite. The engine and replay (train/trajectory.h) build updates only
// here, so a replayed step applies the same bits.
Update update_from_grads(const MezoOptions& opt, int64_t step, const std::vector<double>& g, double lr);
// Applies `up` to every stored parameter of `model` (update only, no perturbed copies).
void apply_update(ZoModel& model, ZoParams& params, const Update& up);

}  // namespace zo2
