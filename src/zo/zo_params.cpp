#include "zo/zo_params.h"

#include <algorithm>

#include "common/profile.h"
#include "kernels/zo_kernels.h"
#include "model/opt_weights.h"

namespace zo2 {

ZoParams::ZoParams(at::ScalarType compute_dtype, int64_t group_dirs, bool lookahead)
    : dtype_(compute_dtype), group_(std::max<int64_t>(1, group_dirs)), lookahead_(lookahead) {}

ZoParams::~ZoParams() { settle(); }  // the scratch is freed in the compute stream's order

void ZoParams::begin_step(const Directions& cur, const Update& pending) {
  settle();
  cur_ = cur;
  pending_ = pending;
  touched_.clear();
  vec_ready_.clear();
  hint_id_ = -1;
  hint_w_ = at::Tensor();
}

void ZoParams::flush(int64_t id, const at::Tensor& w) {
  if (ahead_live_ && ahead_.id == id) settle();
  if (first_touch(id)) update_perturb(w, id, &pending_, nullptr, 0, 0, at::Tensor());
}

void ZoParams::hint_vecs(const std::vector<std::pair<int64_t, at::Tensor>>& vecs) {
  const int64_t q = static_cast<int64_t>(cur_.dirs.size());
  // Worth it on a GPU (a launch per parameter of a few thousand elements costs more than its work).
  if (vecs.empty() || !vecs[0].second.is_cuda() || q == 0 || 2 * q > kernels::kMaxBranches ||
      vecs.size() > static_cast<size_t>(kernels::kMaxSegments))
    return;
  for (const auto& [id, w] : vecs)
    if (w.dim() != 1 || !w.is_contiguous() || w.scalar_type() != vecs[0].second.scalar_type() ||
        param_decays(id) != param_decays(vecs[0].first))
      return;
  std::vector<VecPass> passes;
  int64_t total = 0;
  for (const auto& [id, w] : vecs) {
    passes.push_back({id, w, first_touch(id), total});
    total += (w.numel() + 7) / 8 * 8;  // 16-byte aligned copies
  }
  at::Tensor out = at::empty({2 * q, total}, vecs[0].second.options().dtype(dtype_));
  {
    PhaseScope phase("zo_kernels", out.device());
    update_perturb_many(passes, pending_, cur_, out);
  }
  for (const VecPass& p : passes) vec_ready_[p.id] = out.narrow(1, p.offset, p.w.numel());
}

at::Tensor ZoParams::vec(int64_t id, const at::Tensor& w) {
  if (auto it = vec_ready_.find(id); it != vec_ready_.end()) {
    at::Tensor copies = std::move(it->second);
    vec_ready_.erase(it);
    return copies;
  }
  std::vector<int64_t> shape = w.sizes().vec();
  shape.insert(shape.begin(), branches());
  at::Tensor out = at::empty(shape, w.options().dtype(dtype_));
  PhaseScope phase("zo_kernels", w.device());
  const bool first = first_touch(id);
  const int64_t q = static_cast<int64_t>(cur_.dirs.size());
  const int64_t per_pass = 4;  // kernels write at most 8 copies per pass
  for (int64_t k = 0; k < q; k += per_pass) {
    const int64_t n = std::min(per_pass, q - k);
    update_perturb(w, id, first && k == 0 ? &pending_ : nullptr, &cur_, k, n, out.narrow(0, 2 * k, 2 * n));
  }
  return out;
}

at::Tensor ZoParams::scratch(int64_t copies, const at::Tensor& like, int buf) {
  const int64_t numel = copies * like.numel();
  at::Tensor& s = scratch_[buf];
  if (!s.defined() || s.numel() < numel || s.device() != like.device()) {
    settle();        // the side stream may still write the buffer
    s = at::Tensor();  // the outgrown buffer can serve this allocation
    s = at::empty({copies * std::max(like.numel(), largest_[buf])}, like.options().dtype(dtype_));
  }
  return s.narrow(0, 0, numel);
}

void ZoParams::write_pass(int64_t id, const at::Tensor& w, int64_t k, const at::Tensor& out) {
  const int64_t n = std::min(group_, static_cast<int64_t>(cur_.dirs.size()) - k);
  const bool first = first_touch(id);  // the pending update goes with the first pass over `id`
  PhaseScope phase("zo_kernels", w.device());
  update_perturb(w, id, first ? &pending_ : nullptr, &cur_, k, n, out);
}

void ZoParams::write_ahead(int64_t id, const at::Tensor& w, int64_t k, int buf) {
  const int64_t n = std::min(group_, static_cast<int64_t>(cur_.dirs.size()) - k);
  at::Tensor out = scratch(2 * n, w, buf);  // allocated (if ever) in the compute stream's order
  if (!side_ || side_->device() != w.device())
    side_ = std::make_unique<Queue>(Queue::side(w.device(), /*high_priority=*/false));
  // After everything queued so far: the update of `w` by an earlier touch, the matmul that last read
  // the buffer.
  Queue::current(w.device()).record(queued_);
  side_->wait(queued_);
  {
    Queue::Guard on_side(*side_);
    write_pass(id, w, k, out);
  }
  side_->record(ahead_.ready);
  ahead_.id = id;
  ahead_.k = k;
  ahead_.data = w.data_ptr();
  ahead_.buf = buf;
  ahead_live_ = true;
}

void ZoParams::settle() {
  if (!ahead_live_) return;
  Queue::current(side_->device()).wait(ahead_.ready);
  ahead_live_ = false;
}

void ZoParams::hint_next(int64_t id, const at::Tensor& w) {
  hint_id_ = id;
  hint_w_ = w;
}

void ZoParams::mat(int64_t id, const at::Tensor& w, const MatrixFn& fn) {
  const int64_t q = static_cast<int64_t>(cur_.dirs.size());
  const bool ahead = lookahead_ && w.is_cuda();
  const int64_t hint = hint_id_;
  const at::Tensor hint_w = std::move(hint_w_);
  hint_id_ = -1;
  hint_w_ = at::Tensor();
  std::vector<int64_t> shape = w.sizes().vec();
  shape.insert(shape.begin(), 0);
  for (int64_t k = 0; k < q; k += group_) {
    const int64_t n = std::min(group_, q - k);
    shape[0] = 2 * n;
    if (ahead_live_ && ahead_.id == id && ahead_.k == k && ahead_.data == w.data_ptr()) {
      Queue::current(w.device()).wait(ahead_.ready);
      ahead_live_ = false;
      buf_ = ahead_.buf;
    } else {
      settle();
      buf_ = 0;  // any matrix (the head too); buffer 1 only ever holds a block's matrices
      // Same stream as the consumer of the buffer's previous pass, so reusing it is ordered.
      write_pass(id, w, k, scratch(2 * n, w, buf_));
    }
    at::Tensor s = scratch(2 * n, w, buf_).view(shape);
    // Ahead only what buffer 1 is sized for (a block's matrices: not the head's next group).
    auto fits = [&](const at::Tensor& t) { return largest_[1] == 0 || t.numel() <= largest_[1]; };
    if (ahead) {
      if (k + group_ < q && fits(w))
        write_ahead(id, w, k + group_, 1 - buf_);
      else if (k + group_ >= q && hint >= 0 && fits(hint_w))
        write_ahead(hint, hint_w, 0, 1 - buf_);
    }
    fn(2 * k, s);
  }
}

at::Tensor ZoParams::rows(int64_t id, const at::Tensor& table, const at::Tensor& rows) {
  if (ahead_live_ && ahead_.id == id) settle();
  PhaseScope phase("zo_kernels", table.device());
  if (first_touch(id)) update_perturb(table, id, &pending_, nullptr, 0, 0, at::Tensor());
  at::Tensor out = at::empty({branches(), rows.numel(), table.size(1)}, table.options().dtype(dtype_));
  gather_perturb(table, id, rows.contiguous(), cur_, out);
  return out;
}

}  // namespace zo2
