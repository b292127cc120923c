#include "zo/perturbation.h"

#include <algorithm>

#include "common/device.h"
#include "common/kernel_dtype.h"
#include "common/error.h"
#include "kernels/zo_kernels.h"
#include "model/opt_weights.h"

namespace zo2 {

namespace {

kernels::UpdateSpec update_spec(const Update& up, int64_t id) {
  ZO2_REQUIRE(up.dirs.size() <= static_cast<size_t>(kernels::kMaxDirs), "an update combines at most ",
              kernels::kMaxDirs, " directions (q x perturbation-parallel ranks), got ", up.dirs.size());
  kernels::UpdateSpec s;
  s.ndirs = static_cast<int>(up.dirs.size());
  s.key = up.key;
  std::copy(up.dirs.begin(), up.dirs.end(), s.dir);
  std::copy(up.coef.begin(), up.coef.end(), s.coef);
  s.lr = up.lr;
  s.wd = param_decays(id) ? up.wd : 0.f;
  s.stochastic_round = up.stochastic_round;
  return s;
}

kernels::PerturbSpec perturb_spec(const Directions* cur, int64_t first, int64_t count, const at::Tensor& out,
                                  int64_t per_branch) {
  kernels::PerturbSpec s;
  if (!cur || count == 0) return s;
  ZO2_REQUIRE(2 * count <= kernels::kMaxBranches, "one pass writes at most ", kernels::kMaxBranches, " copies");
  TORCH_CHECK(out.is_contiguous() && out.numel() == 2 * count * per_branch, "perturbation output has the wrong shape");
  s.nbranch = static_cast<int>(2 * count);
  s.key = cur->key;
  for (int64_t k = 0; k < count; ++k) {
    s.dir[2 * k] = s.dir[2 * k + 1] = cur->dirs[first + k];
    s.scale[2 * k] = cur->eps;
    s.scale[2 * k + 1] = -cur->eps;
  }
  s.out = out.data_ptr();
  s.out_dtype = kernel_dtype(out.scalar_type());
  s.out_stride = per_branch;
  return s;
}

void* stream_of(const at::Tensor& t) { return current_stream(t.device()); }

}  // namespace

void update_perturb(const at::Tensor& w, int64_t id, const Update* up, const Directions* cur, int64_t first,
                    int64_t count, const at::Tensor& out) {
  TORCH_CHECK(w.is_contiguous(), "parameter ", id, " is not contiguous");
  kernels::UpdateSpec us = up && !up->empty() ? update_spec(*up, id) : kernels::UpdateSpec{};
  kernels::PerturbSpec ps = perturb_spec(cur, first, count, out, w.numel());
  if (us.ndirs == 0 && ps.nbranch == 0) return;
  const uint32_t pid = static_cast<uint32_t>(id);
  if (w.is_cuda()) {
#ifdef ZO2_WITH_CUDA
    kernels::cuda::update_perturb(w.data_ptr(), kernel_dtype(w.scalar_type()), w.numel(), pid, us, ps, stream_of(w));
#else
    throw_error("this zo2 was built without CUDA");
#endif
  } else {
    kernels::cpu::update_perturb(w.data_ptr(), kernel_dtype(w.scalar_type()), w.numel(), pid, us, ps);
  }
}

void update_perturb_many(const std::vector<VecPass>& params, const Update& up, const Directions& cur,
                         const at::Tensor& out) {
  ZO2_REQUIRE(params.size() <= static_cast<size_t>(kernels::kMaxSegments), "one pass takes at most ",
              kernels::kMaxSegments, " parameters, got ", params.size());
  if (params.empty()) return;
  const at::Tensor& w0 = params[0].w;
  kernels::Segments segs;
  kernels::UpdateSpec us;
  for (const VecPass& p : params) {
    TORCH_CHECK(p.w.is_contiguous() && p.w.scalar_type() == w0.scalar_type() && p.w.device() == w0.device(),
                "parameter ", p.id, " differs from the pass's first in dtype, device or layout");
    kernels::Segment& s = segs.seg[segs.count++];
    s.theta = p.w.data_ptr();
    s.n = p.w.numel();
    s.param = static_cast<uint32_t>(p.id);
    s.out_offset = p.offset;
    s.update = p.update && !up.empty();
    if (!s.update) continue;
    const kernels::UpdateSpec one = update_spec(up, p.id);
    ZO2_REQUIRE(us.ndirs == 0 || one.wd == us.wd, "parameters of one pass must decay alike (", p.id, ")");
    us = one;
  }
  const int64_t q = static_cast<int64_t>(cur.dirs.size());
  kernels::PerturbSpec ps = perturb_spec(&cur, 0, q, out, out.size(1));
  const kernels::DType dt = kernel_dtype(w0.scalar_type());
  if (w0.is_cuda()) {
#ifdef ZO2_WITH_CUDA
    kernels::cuda::update_perturb_many(segs, dt, us, ps, stream_of(w0));
#else
    throw_error("this zo2 was built without CUDA");
#endif
  } else {
    kernels::cpu::update_perturb_many(segs, dt, us, ps);
  }
}

void gather_perturb(const at::Tensor& table, int64_t id, const at::Tensor& rows, const Directions& cur,
                    const at::Tensor& out) {
  TORCH_CHECK(table.is_contiguous() && rows.is_contiguous() && rows.scalar_type() == at::kLong);
  const int64_t dim = table.size(1), n = rows.numel(), q = static_cast<int64_t>(cur.dirs.size());
  const uint32_t pid = static_cast<uint32_t>(id);
  for (int64_t k = 0; k < q; k += kernels::kMaxBranches / 2) {
    const int64_t c = std::min<int64_t>(kernels::kMaxBranches / 2, q - k);
    kernels::PerturbSpec ps = perturb_spec(&cur, k, c, out.narrow(0, 2 * k, 2 * c), n * dim);
    if (table.is_cuda()) {
#ifdef ZO2_WITH_CUDA
      kernels::cuda::gather_perturb(table.data_ptr(), kernel_dtype(table.scalar_type()), dim,
                                    rows.data_ptr<int64_t>(), n, pid, ps, stream_of(table));
#else
      throw_error("this zo2 was built without CUDA");
#endif
    } else {
      kernels::cpu::gather_perturb(table.data_ptr(), kernel_dtype(table.scalar_type()), dim,
                                   rows.data_ptr<int64_t>(), n, pid, ps);
    }
  }
}

at::Tensor direction_z(uint64_t key, uint32_t dir, int64_t id, const at::Tensor& like) {
  at::Tensor z = at::empty(like.sizes(), like.options().dtype(at::kFloat));
  if (like.is_cuda()) {
#ifdef ZO2_WITH_CUDA
    kernels::cuda::normal(z.data_ptr<float>(), z.numel(), key, static_cast<uint32_t>(id), dir, 0, stream_of(z));
#else
    throw_error("this zo2 was built without CUDA");
#endif
  } else {
    kernels::cpu::normal(z.data_ptr<float>(), z.numel(), key, static_cast<uint32_t>(id), dir, 0);
  }
  return z;
}

}  // namespace zo2
