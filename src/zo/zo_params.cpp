#include "zo/zo_params.h"

#include <algorithm>

#include "common/profile.h"

namespace zo2 {

ZoParams::ZoParams(at::ScalarType compute_dtype, int64_t group_dirs)
    : dtype_(compute_dtype), group_(std::max<int64_t>(1, group_dirs)) {}

void ZoParams::begin_step(const Directions& cur, const Update& pending) {
  cur_ = cur;
  pending_ = pending;
  touched_.clear();
}

void ZoParams::flush(int64_t id, const at::Tensor& w) {
  if (first_touch(id)) update_perturb(w, id, &pending_, nullptr, 0, 0, at::Tensor());
}

at::Tensor ZoParams::vec(int64_t id, const at::Tensor& w) {
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

at::Tensor ZoParams::scratch(int64_t copies, const at::Tensor& like) {
  const int64_t numel = copies * like.numel();
  if (!scratch_.defined() || scratch_.numel() < numel || scratch_.device() != like.device()) {
    scratch_ = at::Tensor();  // the outgrown buffer can serve this allocation
    scratch_ = at::empty({copies * std::max(like.numel(), largest_)}, like.options().dtype(dtype_));
  }
  return scratch_.narrow(0, 0, numel);
}

void ZoParams::mat(int64_t id, const at::Tensor& w, const MatrixFn& fn) {
  const bool first = first_touch(id);
  const int64_t q = static_cast<int64_t>(cur_.dirs.size());
  std::vector<int64_t> shape = w.sizes().vec();
  shape.insert(shape.begin(), 0);
  for (int64_t k = 0; k < q; k += group_) {
    const int64_t n = std::min(group_, q - k);
    shape[0] = 2 * n;
    // Same stream as the consumer of the previous group, so reusing the scratch is ordered.
    at::Tensor s = scratch(2 * n, w).view(shape);
    {
      PhaseScope phase("zo_kernels", w.device());
      update_perturb(w, id, first && k == 0 ? &pending_ : nullptr, &cur_, k, n, s);
    }
    fn(2 * k, s);
  }
}

at::Tensor ZoParams::rows(int64_t id, const at::Tensor& table, const at::Tensor& rows) {
  PhaseScope phase("zo_kernels", table.device());
  if (first_touch(id)) update_perturb(table, id, &pending_, nullptr, 0, 0, at::Tensor());
  at::Tensor out = at::empty({branches(), rows.numel(), table.size(1)}, table.options().dtype(dtype_));
  gather_perturb(table, id, rows.contiguous(), cur_, out);
  return out;
}

}  // namespace zo2
