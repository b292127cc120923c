// The ParamSource of a zeroth-order step: hands the forward perturbed copies (theta +- eps z) of each
// parameter, written by one fused pass that first applies the previous step's pending update in place.
// Stored weights are never perturbed in place, so nothing drifts.
#pragma once

#include <unordered_set>

#include "model/param_source.h"
#include "zo/perturbation.h"

namespace zo2 {

class ZoParams final : public ParamSource {
 public:
  // `group_dirs` directions (2 * group_dirs copies) are materialised per matrix pass: 1 keeps the
  // scratch at two copies of the largest matrix.
  explicit ZoParams(at::ScalarType compute_dtype, int64_t group_dirs = 1);

  // Elements of the model's largest matrix: the scratch is sized for it at once, so that it is not
  // reallocated as larger matrices come (the caching allocator would keep the outgrown one).
  void set_largest_matrix(int64_t numel) { largest_ = numel; }
  // Starts a step: `pending` is applied to each parameter the first time the step touches it.
  void begin_step(const Directions& cur, const Update& pending);
  // Applies the pending update to `w` if this step has not touched it yet (no perturbed copy).
  void flush(int64_t id, const at::Tensor& w);
  bool touched(int64_t id) const { return touched_.count(id) != 0; }
  const Directions& directions() const { return cur_; }
  const Update& pending() const { return pending_; }

  int64_t branches() const override { return cur_.branches(); }
  at::Tensor vec(int64_t id, const at::Tensor& w) override;
  void mat(int64_t id, const at::Tensor& w, const MatrixFn& fn) override;
  at::Tensor rows(int64_t id, const at::Tensor& table, const at::Tensor& rows) override;
  bool writes_weights() const override { return !pending_.empty(); }

 private:
  // True the first time `id` is seen this step (then the pending update is due).
  bool first_touch(int64_t id) { return touched_.insert(id).second; }
  at::Tensor scratch(int64_t copies, const at::Tensor& like);  // [copies * like.numel()]

  at::ScalarType dtype_;
  int64_t group_;
  Directions cur_;
  Update pending_;
  std::unordered_set<int64_t> touched_;
  at::Tensor scratch_;
  int64_t largest_ = 0;
};

}  // namespace zo2
