// Test helpers for the ZO kernels (CPU and GPU suites): tensors of a kernel DType, the double-precision
// reference of the fused update, and the acceptance rule for rounded results. Reference roundings
// use ATen's casts (c10::Half / c10::BFloat16), independent of the kernels' own conversion code.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

#include "kernels/zo_kernels.h"

namespace zo2::test {

using kernels::DType;

inline at::ScalarType scalar_type(DType d) {
  switch (d) {
    case DType::kF16: return at::kHalf;
    case DType::kBF16: return at::kBFloat16;
    default: return at::kFloat;
  }
}
inline const char* dtype_name(DType d) { return d == DType::kF32 ? "f32" : d == DType::kF16 ? "f16" : "bf16"; }
inline const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> v = {DType::kF32, DType::kF16, DType::kBF16};
  return v;
}

// Raw bits, for bitwise comparisons.
inline at::Tensor bits(const at::Tensor& t) {
  return t.element_size() == 2 ? t.view(at::kShort) : t.view(at::kInt);
}

// Whether `got` (values of dtype d) is the round-to-nearest of some value within err of ref (float64),
// i.e. lies between the roundings of ref -/+ (err + 1 fp32 ulp). The fp32 ulp absorbs the rounding
// to fp32 that precedes the 16-bit rounding (and the cast of the bounds to fp32).
inline at::Tensor within_rounding(DType d, const at::Tensor& ref, const at::Tensor& err, const at::Tensor& got) {
  const at::Tensor margin = err + ref.abs() * std::ldexp(1.0, -23) + 1e-45;
  const at::Tensor lo = (ref - margin).to(at::kFloat).to(scalar_type(d)).to(at::kDouble);
  const at::Tensor hi = (ref + margin).to(at::kFloat).to(scalar_type(d)).to(at::kDouble);
  const at::Tensor g = got.to(at::kDouble);
  return (g >= lo) & (g <= hi);
}
// ref rounded to nearest in d (via fp32), as float64.
inline at::Tensor round_ref(DType d, const at::Tensor& ref) {
  return ref.to(at::kFloat).to(scalar_type(d)).to(at::kDouble);
}

// Spacing of the d grid at x (the distance between x's two neighbours in d, up to binade edges).
inline at::Tensor grid_step(DType d, const at::Tensor& x) {
  const int emin = d == DType::kF16 ? -14 : -126, mant = d == DType::kF16 ? 10 : d == DType::kBF16 ? 7 : 23;
  return at::exp2(at::clamp_min(at::floor(at::log2(x.abs())), emin) - mant);
}

// z of elements [0, n) of (key, param, dir) from the CPU kernels, as float64.
inline at::Tensor cpu_z(int64_t n, uint64_t key, uint32_t param, uint32_t dir) {
  at::Tensor z = at::empty({n}, at::kFloat);
  kernels::cpu::normal(z.data_ptr<float>(), n, key, param, dir, 0);
  return z.to(at::kDouble);
}

// The update of update_perturb in float64 from theta (any dtype) and z from cpu_z, with the bound on
// the difference the kernel's fp32 arithmetic may add: one fp32 rounding per fma, scaled by lr.
struct UpdateRef {
  at::Tensor value, err;
};
inline UpdateRef update_reference(const at::Tensor& theta, uint32_t param, const kernels::UpdateSpec& up) {
  const int64_t n = theta.numel();
  const at::Tensor t = theta.to(at::kDouble);
  at::Tensor acc = at::zeros({n}, at::kDouble), mag = at::zeros({n}, at::kDouble);
  for (int k = 0; k < up.ndirs; ++k) {
    const at::Tensor cz = double(up.coef[k]) * cpu_z(n, up.key, param, up.dir[k]);
    acc += cz;
    mag += cz.abs();
  }
  const double lr = up.lr, wd = up.wd;
  at::Tensor value = t - lr * (acc + wd * t);
  at::Tensor err = lr * (up.ndirs + 2) * std::ldexp(1.0, -24) * (mag + wd * t.abs());
  return {value, err};
}

// The spec both suites use: 3 update directions (lr 1e-3, wd 0.1) and 3 copies, two of which share a
// direction (+-1e-3) and one with scale 0.5 in another.
struct Case {
  kernels::UpdateSpec up;
  kernels::PerturbSpec pt;
};
inline Case make_case(DType out_dtype, bool stochastic_round, uint64_t step = 11) {
  Case c;
  c.up.ndirs = 3;
  c.up.key = kernels::step_key(7, step);
  const uint32_t dirs[] = {0, 1, 5};
  const float coefs[] = {0.8f, -1.3f, 0.25f};
  std::copy(dirs, dirs + 3, c.up.dir);
  std::copy(coefs, coefs + 3, c.up.coef);
  c.up.lr = 1e-3f;
  c.up.wd = 0.1f;
  c.up.stochastic_round = stochastic_round;
  c.pt.nbranch = 3;
  c.pt.key = kernels::step_key(7, step + 1);
  const uint32_t pdirs[] = {2, 2, 9};
  const float scales[] = {1e-3f, -1e-3f, 0.5f};
  std::copy(pdirs, pdirs + 3, c.pt.dir);
  std::copy(scales, scales + 3, c.pt.scale);
  c.pt.out_dtype = out_dtype;
  return c;
}

// N(0, 0.05^2) weights in dtype d (from the global ATen generator); the first four are 0, -0, 1, -3e-6.
inline at::Tensor random_theta(int64_t n, DType d) {
  at::Tensor t = at::randn({n}, at::kDouble) * 0.05;
  t.slice(0, 0, 4).copy_(at::tensor({0.0, -0.0, 1.0, -3e-6}, at::kDouble));
  return t.to(scalar_type(d));
}

}  // namespace zo2::test
