#include "zo/mezo.h"

#include <cmath>

#include "common/error.h"
#include "kernels/zo_kernels.h"

namespace zo2 {

void check_mezo_options(const MezoOptions& opt) {
  ZO2_REQUIRE(opt.q >= 1, "q (directions per step) must be >= 1, got ", opt.q);
  ZO2_REQUIRE(std::isfinite(opt.eps) && opt.eps > 0, "eps must be a finite number > 0, got ", opt.eps);
  ZO2_REQUIRE(std::isfinite(opt.weight_decay) && opt.weight_decay >= 0, "weight decay must be a finite number >= 0, got ",
              opt.weight_decay);
  ZO2_REQUIRE(opt.perturbation_groups >= 1, "perturbation-parallel groups must be >= 1, got ", opt.perturbation_groups);
  ZO2_REQUIRE(opt.q * opt.perturbation_groups <= kernels::kMaxDirs, "q x perturbation groups is at most ",
              kernels::kMaxDirs, ", got ", opt.q * opt.perturbation_groups);
}

MezoEngine::MezoEngine(ZoModel& model, Collectives& comm, const MezoOptions& opt, at::ScalarType compute_dtype)
    : model_(model), comm_(comm), opt_(opt), params_(compute_dtype, opt.group_dirs, opt.lookahead) {
  check_mezo_options(opt);
  ZO2_REQUIRE(comm.world() % opt.perturbation_groups == 0, "perturbation-parallel groups (", opt.perturbation_groups,
              ") must divide the number of ranks (", comm.world(), ")");
  params_.set_largest_matrix(model.config().largest_matrix(), model.config().largest_block_matrix());
}

StepStats MezoEngine::step(int64_t step, const std::vector<Batch>& micro_batches, double lr) {
  ZO2_REQUIRE(!micro_batches.empty(), "a step needs at least one batch");
  const int64_t q = opt_.q, group = comm_.rank() % opt_.perturbation_groups;
  Directions cur;
  cur.key = kernels::step_key(opt_.seed, static_cast<uint64_t>(step));
  cur.eps = opt_.eps;
  for (int64_t k = 0; k < q; ++k) cur.dirs.push_back(static_cast<uint32_t>(group * q + k));

  params_.begin_step(cur, pending_);
  pending_ = Update{};
  at::Tensor sum;
  for (const Batch& b : micro_batches) {
    at::Tensor l = model_.branch_losses(params_, b);
    sum = sum.defined() ? sum + l : l;
  }
  model_.flush(params_);  // parameters no forward touched still get the pending update

  at::Tensor mine = (sum / static_cast<double>(micro_batches.size())).to(at::kCPU, at::kDouble).contiguous();
  std::vector<double> all(static_cast<size_t>(comm_.world() * 2 * q));
  comm_.allgather(mine.data_ptr<double>(), static_cast<int>(2 * q), all.data());
  StepStats stats;
  pending_ = make_update(step, all, lr, &stats);
  if (stats.skipped) ++skipped_;
  return stats;
}

Update MezoEngine::make_update(int64_t step, const std::vector<double>& all, double lr, StepStats* stats) const {
  const int64_t q = opt_.q, P = opt_.perturbation_groups, W = static_cast<int64_t>(all.size()) / (2 * q);
  const int64_t n = P * q;
  stats->step = step;
  stats->lr = lr;
  stats->loss_plus.assign(n, 0.0);
  stats->loss_minus.assign(n, 0.0);
  // Ranks r, r + P, r + 2P, ... share directions and hold different data: average their losses.
  for (int64_t r = 0; r < W; ++r)
    for (int64_t k = 0; k < q; ++k) {
      const int64_t d = (r % P) * q + k;
      stats->loss_plus[d] += all[r * 2 * q + 2 * k] / static_cast<double>(W / P);
      stats->loss_minus[d] += all[r * 2 * q + 2 * k + 1] / static_cast<double>(W / P);
    }
  double loss = 0;
  for (int64_t d = 0; d < n; ++d) {
    stats->grads.push_back((stats->loss_plus[d] - stats->loss_minus[d]) / (2.0 * opt_.eps));
    loss += 0.5 * (stats->loss_plus[d] + stats->loss_minus[d]) / static_cast<double>(n);
  }
  stats->loss = loss;
  // A non-finite loss gives a non-finite g, so checking the g's is checking the losses.
  Update up = update_from_grads(opt_, step, stats->grads, lr);
  stats->skipped = up.empty();
  return up;
}

Update update_from_grads(const MezoOptions& opt, int64_t step, const std::vector<double>& g, double lr) {
  const int64_t n = static_cast<int64_t>(g.size());
  Update up;
  up.key = kernels::step_key(opt.seed, static_cast<uint64_t>(step));
  up.lr = static_cast<float>(lr);
  up.wd = opt.weight_decay;
  up.stochastic_round = opt.stochastic_round;
  for (int64_t d = 0; d < n; ++d) {
    if (!std::isfinite(g[d])) return Update{};
    up.dirs.push_back(static_cast<uint32_t>(d));
    up.coef.push_back(static_cast<float>(g[d] / static_cast<double>(n)));
  }
  return up;
}

void apply_update(ZoModel& model, ZoParams& params, const Update& up) {
  // Also without an update: a streamed model may still hold host copies to bring up to date.
  params.begin_step(Directions{}, up);
  model.flush(params);
}

void MezoEngine::flush() {
  apply_update(model_, params_, pending_);
  pending_ = Update{};
}

}  // namespace zo2
