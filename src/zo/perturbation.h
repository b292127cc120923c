// The zeroth-order step as data: this step's directions, and the pending update of the last step.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace zo2 {

// The directions this rank perturbs along in one step. Branch 2k of a forward is +eps along dirs[k],
// branch 2k+1 is -eps along dirs[k].
struct Directions {
  uint64_t key = 0;             // step key (kernels::step_key(run seed, step))
  std::vector<uint32_t> dirs;   // direction ids (perturbation parallel: offset by the rank's group)
  float eps = 1e-3f;
  int64_t branches() const { return 2 * static_cast<int64_t>(dirs.size()); }
};

// theta <- theta - lr * (sum_k coef[k] * z(key, dirs[k]) + wd * theta), wd only where param_decays(id).
struct Update {
  uint64_t key = 0;
  std::vector<uint32_t> dirs;
  std::vector<float> coef;      // g_k / (number of directions)
  float lr = 0.f;
  float wd = 0.f;
  bool stochastic_round = true; // 16-bit storage only
  bool empty() const { return dirs.empty(); }
};

// One fused pass over parameter `id` (tensor `w`, updated in place): applies `up` (if given), then writes
// the perturbed copies for directions dirs[first, first + count) of `cur` into `out`
// ([2 * count, ...w.shape], any float dtype; undefined = update only). CPU or CUDA by w's device.
void update_perturb(const at::Tensor& w, int64_t id, const Update* up, const Directions* cur, int64_t first,
                    int64_t count, const at::Tensor& out);

// update_perturb of several small parameters in one pass (one launch on the GPU): parameter i gets `up`
// where update[i] and its copies of every direction of `cur` go to out[:, offset[i] : offset[i] + numel]
// (out [2q, total], 2q <= kMaxBranches). All of one dtype and device; those updated decay alike.
struct VecPass {
  int64_t id = 0;
  at::Tensor w;
  bool update = false;
  int64_t offset = 0;
};
void update_perturb_many(const std::vector<VecPass>& params, const Update& up, const Directions& cur,
                         const at::Tensor& out);

// out [nb, N, dim] = rows of `table` perturbed along every direction of `cur` (table not modified).
void gather_perturb(const at::Tensor& table, int64_t id, const at::Tensor& rows, const Directions& cur,
                    const at::Tensor& out);

// z of parameter `id` along direction `dir` of step key `key`, shaped like `like`, fp32 (tests, replay).
at::Tensor direction_z(uint64_t key, uint32_t dir, int64_t id, const at::Tensor& like);

}  // namespace zo2
