// The per-element arithmetic of the ZO kernels, shared by the CPU loops (kernels_cpu.cpp) and the CUDA
// kernels (zo_kernels.cu): Box-Muller normals, the fused update of a tile of groups and its perturbed
// copies. A tile is NG consecutive Philox groups (4 NG elements) starting at group g0; every value is a
// function of (key, subsequence, element) only, so tiling and launch shape cannot change results.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/error.h"
#include "kernels/float16.h"
#include "kernels/philox.h"
#include "kernels/zo_kernels.h"

namespace zo2::kernels {

#if !defined(__CUDA_ARCH__)
// sin(pi t) and cos(pi t) in double with an exact reduction to |r| <= 1/4, so multiples of 1/2 give
// exact zeros and the only error left is that of sin/cos near 0 (about 1e-16).
inline void sincospi_double(double t, double& s, double& c) {
  const double q = std::floor(2.0 * t + 0.5);
  const double r = t - 0.5 * q;  // exact for t with <= 24 significant bits
  const double sr = std::sin(M_PI * r), cr = std::cos(M_PI * r);
  switch (int64_t(q) & 3) {
    case 0: s = sr, c = cr; break;
    case 1: s = cr, c = -sr; break;
    case 2: s = -sr, c = -cr; break;
    default: s = -cr, c = sr; break;
  }
}
#endif

// Box-Muller's log and sincospi on the only inputs it has, u in [2^-33, 1] and t in (0, 2], without
// the zero/subnormal/inf/NaN/large-argument paths of libdevice's logf and sincospif: the ZO kernels are
// bound by instruction issue, and these two were half of each normal's instructions. Polynomials and
// error bounds come from scripts/ref/fit_box_muller.py (float32 emulation of this code against mpmath:
// log <= 0.85 ulp; z within 7.4e-7 of the exact Box-Muller). Host-callable only so that
// scripts/bench/emulate_device_z.sh can run them on the CPU; the host's own z is computed in double.
ZO2_HD inline float log_unit(float u) {
  // u = 2^k m with m in [2/3, 4/3): log u = k ln2 + log1p(f), f = m - 1 (exact), log1p(f) = f + f^2 R(f).
  const uint32_t ix = f32_bits(u);
  const int k = (int(ix) - 0x3F2AAAAB) >> 23;
  const float f = bits_f32(ix - (uint32_t(k) << 23)) - 1.f;
  float p = 0.11612164974212646f;
  p = fmaf(p, f, -0.1272628903388977f);
  p = fmaf(p, f, 0.1085328757762909f);
  p = fmaf(p, f, -0.12221359461545944f);
  p = fmaf(p, f, 0.142961785197258f);
  p = fmaf(p, f, -0.16677974164485931f);
  p = fmaf(p, f, 0.19999852776527405f);
  p = fmaf(p, f, -0.24999842047691345f);
  p = fmaf(p, f, 0.3333333432674408f);
  p = fmaf(p, f, -0.5f);
  const float l = fmaf(f * f, p, f);
  return fmaf(float(k), 0.6931471824645996f, fmaf(float(k), -1.9046542121259336e-09f, l));  // ln2 hi + lo
}
ZO2_HD inline void sincospi_unit(float t, float& sn, float& cs) {
  // q = rint(2t) (nearest-even) from one rounding at the magnitude where the ulp is 1; m's low bits are
  // q mod 4 (1.5 2^23 is a multiple of 4), which spares a float-to-int conversion.
  const float m = fmaf(t, 2.f, 12582912.f);
  const float q = m - 12582912.f;
  const float r = fmaf(q, -0.5f, t);  // exact, |r| <= 1/4; pi t = pi r + q pi/2
  const float r2 = r * r, r2_lo = fmaf(r, r, -r2);  // r^2 = r2 + r2_lo exactly
  // sin(pi r) = pi r + r^3 S(r^2), pi = hi + lo: one rounding of the sum is the only large error.
  float sp = 0.08122957497835159f;
  sp = fmaf(sp, r2, -0.5992287993431091f);
  sp = fmaf(sp, r2, 2.550163507461548f);
  sp = fmaf(sp, r2, -5.167712688446045f);
  sp = fmaf(r, 3.1415927410125732f, fmaf(r2 * r, sp, r * -8.742277657347586e-08f));
  // cos(pi r) = 1 + c0 r^2 + r^4 C(r^2), c0 = -pi^2/2 = hi + lo, with the exact r^2.
  float cp = -0.025566814467310905f;
  cp = fmaf(cp, r2, 0.2353212684392929f);
  cp = fmaf(cp, r2, -1.335262656211853f);
  cp = fmaf(cp, r2, 4.058712005615234f);
  cp = fmaf(r2, -1.451857940537593e-07f, (r2 * r2) * cp);
  cp = 1.f + fmaf(r2, -4.934802055358887f, fmaf(r2_lo, -4.934802055358887f, cp));
  const uint32_t i = f32_bits(m);
  const float a = (i & 1) ? cp : sp, b = (i & 1) ? sp : cp;  // quadrant i: rotate by i pi/2
  sn = (i & 2) ? -a : a;
  cs = ((i + 1) & 2) ? -b : b;
}

// sqrtf for Box-Muller's radicand (+-0 or a positive normal): the fast path of CUDA's correctly rounded
// sqrtf (an approximate reciprocal root and one Newton correction), without the range test and branch
// to its slow path for subnormal, infinite and negative input, which every pair paid for.
// Bitwise sqrtf on +-0 and every float in [2^-30, 64] (tests/gpu/sqrt_unit_check.cu).
ZO2_HD inline float sqrt_unit(float x) {
#if defined(__CUDA_ARCH__)
  float r;
  asm("rsqrt.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  const float y = __fmul_rn(x, r), h = __fmul_rn(0.5f, r);
  const float s = fmaf(fmaf(-y, y, x), h, y);
  return x > 0.f ? s : x;  // +-0 (where s is NaN) is its own root
#else
  return sqrtf(x);
#endif
}

// Two normals from two Philox words, in curand_normal4's order (s sin, s cos). The uniforms are
// cuRAND's, evaluated in fp32 identically on host and device: u = a 2^-32 + 2^-33 in (0, 1] for the
// radius, t = b 2^-31 + 2^-32 in (0, 2] for the angle pi t. cuRAND's device __sincosf is replaced by
// accurate functions: the device uses log_unit/sqrtf/sincospi_unit (about 1 ulp each), the host
// evaluates the same formula in double and rounds once, so host and device agree to a few fp32 ulps
// (docs/zo.md).
ZO2_HD inline void box_muller(uint32_t a, uint32_t b, float& z0, float& z1) {
  const float u = float(a) * 0x1p-32f + 0x1p-33f;  // products are exact: fma contraction is harmless
  const float t = float(b) * 0x1p-31f + 0x1p-32f;
#if defined(__CUDA_ARCH__)
  const float s = sqrt_unit(-2.f * log_unit(u));
  float sn, cs;
  sincospi_unit(t, sn, cs);
  z0 = s * sn;
  z1 = s * cs;
#else
  const double s = std::sqrt(-2.0 * std::log(double(u)));
  double sn, cs;
  sincospi_double(double(t), sn, cs);
  z0 = float(s * sn);
  z1 = float(s * cs);
#endif
}

// z of the 4 NG elements of groups g0..g0+NG-1 of stream (key, subseq).
template <int NG>
ZO2_HD inline void normals(uint64_t key, uint64_t subseq, uint64_t g0, float (&z)[4 * NG]) {
  Philox4 w[NG];
  philox_groups<NG>(key, subseq, g0, w);
  ZO2_UNROLL
  for (int j = 0; j < NG; ++j) {
    box_muller(w[j].w[0], w[j].w[1], z[4 * j], z[4 * j + 1]);
    box_muller(w[j].w[2], w[j].w[3], z[4 * j + 2], z[4 * j + 3]);
  }
}

// Stochastic rounding's uniform word for element i of parameter p in the update of the step with key
// K: 16 bits of Wellons' lowbias32 hash of the pair index lo(i >> 1) under a base derived from
// (K, p, hi(i)), the high half for even i and the low half for odd i, with 0x8000 below them. Rounding
// needs only a uniform word independent of the value; one hash per two elements costs about a third
// of the Philox stream it replaced (docs/zo.md). 16 bits decide every fp16 normal and bf16 result
// exactly (their fp32 values drop at most 13 / 16 bits) and fp16 subnormal ones to 2^-17 ulp.
// mix32(x) = mix32_tail(x ^ (x >> 16)); split so that a tile can share the head (update_tile).
ZO2_HD inline uint32_t mix32_tail(uint32_t x) {
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  return x ^ (x >> 16);
}
ZO2_HD inline uint32_t mix32(uint32_t x) { return mix32_tail(x ^ (x >> 16)); }
ZO2_HD inline uint32_t rounding_base(uint64_t key, uint32_t param, uint32_t hi) {
  return mix32(mix32(mix32(uint32_t(key) ^ 0x9E3779B9u) ^ uint32_t(key >> 32)) ^ param) ^ mix32(hi + 0x85EBCA6Bu);
}
ZO2_HD inline uint32_t rounding_half(uint32_t w, bool odd) { return (odd ? w << 16 : w & 0xFFFF0000u) | 0x8000u; }
ZO2_HD inline uint32_t rounding_word(uint64_t key, uint32_t param, uint64_t i) {
  return rounding_half(mix32(uint32_t(i >> 1) ^ rounding_base(key, param, uint32_t(i >> 32))), i & 1);
}

// The pending update of one tile, in place: t (fp32 values of the stored theta) and th (the stored
// words) become the updated parameter. acc sums the directions in order with fmaf, then
// t_new = fmaf(-lr, fmaf(wd, t, acc), t) is rounded to T (stochastically, from rounding_word).
template <int NG, class T>
ZO2_HD inline void update_tile(uint32_t param, const UpdateSpec& up, uint64_t g0, float (&t)[4 * NG],
                               T (&th)[4 * NG]) {
  float acc[4 * NG] = {};
  for (int k = 0; k < up.ndirs; ++k) {
    float z[4 * NG];
    normals<NG>(up.key, subsequence(up.dir[k], param), g0, z);
    const float c = up.coef[k];
    ZO2_UNROLL
    for (int j = 0; j < 4 * NG; ++j) acc[j] = fmaf(c, z[j], acc[j]);
  }
  ZO2_UNROLL
  for (int j = 0; j < 4 * NG; ++j) acc[j] = fmaf(-up.lr, fmaf(up.wd, t[j], acc[j]), t[j]);  // unrounded
  const uint64_t i0 = 4 * g0;
  if (sizeof(T) != 2 || !up.stochastic_round) {
    ZO2_UNROLL
    for (int j = 0; j < 4 * NG; ++j) th[j] = round_rne<T>(acc[j]);
  } else {
    // Common case branch-free: the tile's rounding words share one base (hi(i) is constant inside it)
    // and every value takes the fast rounding; the general path redoes the tile only where a value is
    // rare (fp16 below 2^-24, zero included, or from 65504, bf16 top ulp, inf, NaN) or the tile
    // straddles a multiple of 2^32 elements.
    bool slow = ((i0 ^ (i0 + 4 * NG - 1)) >> 32) != 0;
    if (!slow) {
      // i0 is a multiple of 4 NG, so the pair index lo((i0 + j) >> 1) is x ^ (j >> 1) with x = lo(i0 >> 1),
      // and mix32's head h ^ (h >> 16) of h = x ^ base ^ m (m < 2^16) is y0 ^ m: one head per tile.
      const uint32_t x0 = uint32_t(i0 >> 1) ^ rounding_base(up.key, param, uint32_t(i0 >> 32)), y0 = x0 ^ (x0 >> 16);
      ZO2_UNROLL
      for (int j = 0; j < 4 * NG; j += 2) {
        const uint32_t w = mix32_tail(y0 ^ uint32_t(j >> 1));
        th[j] = round_stochastic_fast<T>(acc[j], rounding_half(w, 0), slow);
        th[j + 1] = round_stochastic_fast<T>(acc[j + 1], rounding_half(w, 1), slow);
      }
    }
    if (slow) {
      ZO2_UNROLL
      for (int j = 0; j < 4 * NG; ++j) th[j] = round_stochastic<T>(acc[j], rounding_word(up.key, param, i0 + j));
    }
  }
  ZO2_UNROLL
  for (int j = 0; j < 4 * NG; ++j) t[j] = to_float(th[j]);
}

// The perturbed copies of one tile: emit(b, o) receives o[j] = TO(t[j] + scale[b] z_dir[b][j]) (one fmaf,
// then RNE) for each branch b. Consecutive branches with the same direction share one z.
template <int NG, class TO, class Emit>
ZO2_HD inline void perturb_tile(uint32_t param, const PerturbSpec& pt, uint64_t g0, const float (&t)[4 * NG],
                                Emit&& emit) {
  float z[4 * NG];
  auto copy = [&](int b) {
    float x[4 * NG];
    ZO2_UNROLL
    for (int j = 0; j < 4 * NG; ++j) x[j] = fmaf(pt.scale[b], z[j], t[j]);
    TO o[4 * NG];
    round_rne_n(x, o);
    emit(b, o);
  };
  if (pt.nbranch == 2 && pt.dir[0] == pt.dir[1]) {  // q = 1 (+eps, -eps): unrolled, the common case
    normals<NG>(pt.key, subsequence(pt.dir[0], param), g0, z);
    copy(0);
    copy(1);
    return;
  }
  for (int b = 0; b < pt.nbranch; ++b) {
    if (b == 0 || pt.dir[b] != pt.dir[b - 1]) normals<NG>(pt.key, subsequence(pt.dir[b], param), g0, z);
    copy(b);
  }
}

// ---- host-side helpers shared by the CPU and CUDA entry points ----

// Calls f(T{}) with T = float, Half or BFloat for `d`.
template <class F>
void dispatch_dtype(DType d, const char* what, F&& f) {
  switch (d) {
    case DType::kF32: return f(float{});
    case DType::kF16: return f(Half{});
    case DType::kBF16: return f(BFloat{});
  }
  throw_error(what, ": unknown dtype ", int(d));
}

// Whether update_perturb writes theta: lr == 0 is an exact no-op (the formula would turn -0 into +0
// and 0 * inf into NaN), so weights stay bitwise unchanged.
inline bool has_update(const UpdateSpec& up) { return up.ndirs > 0 && up.lr != 0.f; }

inline void check_perturb(const char* fn, const PerturbSpec& pt, int64_t n) {
  ZO2_REQUIRE(pt.nbranch >= 0 && pt.nbranch <= kMaxBranches, fn, ": PerturbSpec.nbranch = ", pt.nbranch,
              " outside [0, ", kMaxBranches, "]");
  ZO2_REQUIRE(pt.nbranch == 0 || n == 0 || pt.out, fn, ": PerturbSpec.out is null with nbranch = ", pt.nbranch);
  ZO2_REQUIRE(pt.nbranch <= 1 || pt.out_stride >= n, fn, ": PerturbSpec.out_stride = ", pt.out_stride,
              " < ", n, " elements per copy: branch copies would overlap");
}

inline void check_update_perturb(const char* fn, const void* theta, int64_t n, const UpdateSpec& up,
                                 const PerturbSpec& pt) {
  ZO2_REQUIRE(n >= 0, fn, ": n = ", n, " is negative");
  ZO2_REQUIRE(n == 0 || theta, fn, ": theta is null");
  ZO2_REQUIRE(up.ndirs >= 0 && up.ndirs <= kMaxDirs, fn, ": UpdateSpec.ndirs = ", up.ndirs, " outside [0, ",
              kMaxDirs, "]");
  check_perturb(fn, pt, n);
}

inline void check_segments(const char* fn, const Segments& s, const UpdateSpec& up, const PerturbSpec& pt) {
  ZO2_REQUIRE(s.count >= 0 && s.count <= kMaxSegments, fn, ": ", s.count, " segments outside [0, ", kMaxSegments, "]");
  for (int i = 0; i < s.count; ++i) {
    check_update_perturb(fn, s.seg[i].theta, s.seg[i].n, up, PerturbSpec{});
    ZO2_REQUIRE(s.seg[i].out_offset >= 0, fn, ": segment ", i, " has a negative output offset");
    check_perturb(fn, pt, s.seg[i].out_offset + s.seg[i].n);
  }
}

inline void check_gather(const char* fn, const void* table, int64_t dim, const int64_t* rows, int64_t nrows,
                         const PerturbSpec& pt) {
  ZO2_REQUIRE(dim >= 0 && nrows >= 0, fn, ": dim = ", dim, ", nrows = ", nrows, " must not be negative");
  ZO2_REQUIRE(dim == 0 || nrows == 0 || (table && rows), fn, ": table or rows is null");
  check_perturb(fn, pt, nrows * dim);
}

}  // namespace zo2::kernels
