// The ParamSource of a zeroth-order step: hands the forward perturbed copies (theta +- eps z) of each
// parameter, written by one fused pass that first applies the previous step's pending update in place.
// Stored weights are never perturbed in place, so nothing drifts.
#pragma once

#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "common/device_queue.h"
#include "model/param_source.h"
#include "zo/perturbation.h"

namespace zo2 {

class ZoParams final : public ParamSource {
 public:
  // `group_dirs` directions (2 * group_dirs copies) are materialised per matrix pass: 1 keeps the
  // scratch at two copies of the largest matrix. `lookahead`: on a GPU, the pass after the current one
  // (the next direction group, or the hinted matrix) is written on a low-priority side stream while the
  // current pass's matmul runs, into a second buffer (two copies of the largest block matrix). Run the
  // compute stream at high priority (use_high_priority_stream) so the side work only fills its gaps.
  // Same bits either way.
  explicit ZoParams(at::ScalarType compute_dtype, int64_t group_dirs = 1, bool lookahead = false);
  ~ZoParams() override;
  ZoParams(const ZoParams&) = delete;
  ZoParams& operator=(const ZoParams&) = delete;

  // Elements of the model's largest matrix: the scratch is sized for it at once, so that it is not
  // reallocated as larger matrices come (the caching allocator would keep the outgrown one).
  // `ahead_numel`: of the largest matrix a hint can name (a block's), for the second buffer.
  void set_largest_matrix(int64_t numel, int64_t ahead_numel) {
    largest_[0] = numel;
    largest_[1] = ahead_numel;
  }
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
  void hint_vecs(const std::vector<std::pair<int64_t, at::Tensor>>& vecs) override;
  void hint_next(int64_t id, const at::Tensor& w) override;
  void settle() override;

 private:
  // A pass written ahead on the side stream: parameter, direction group, tensor, buffer, done marker.
  struct Ahead {
    int64_t id = -1, k = 0;
    const void* data = nullptr;
    int buf = 0;
    Marker ready;
  };
  // True the first time `id` is seen this step (then the pending update is due).
  bool first_touch(int64_t id) { return touched_.insert(id).second; }
  at::Tensor scratch(int64_t copies, const at::Tensor& like, int buf);  // [copies * like.numel()]
  // Writes the copies of directions [k, k + group) of `id` (applying the pending update on first touch).
  void write_pass(int64_t id, const at::Tensor& w, int64_t k, const at::Tensor& out);
  // Starts pass (id, k) on the side stream into buffer `buf`, after all work queued so far.
  void write_ahead(int64_t id, const at::Tensor& w, int64_t k, int buf);

  at::ScalarType dtype_;
  int64_t group_;
  Directions cur_;
  Update pending_;
  std::unordered_set<int64_t> touched_;
  std::unordered_map<int64_t, at::Tensor> vec_ready_;  // copies written by hint_vecs, not yet read
  at::Tensor scratch_[2];
  int64_t largest_[2] = {0, 0};
  bool lookahead_;
  int buf_ = 0;                 // buffer of the latest pass: 0 when written in line, either when ahead
  bool ahead_live_ = false;     // ahead_ started and not yet taken or settled
  Ahead ahead_;
  int64_t hint_id_ = -1;
  at::Tensor hint_w_;
  std::unique_ptr<Queue> side_;
  Marker queued_;
};

}  // namespace zo2
