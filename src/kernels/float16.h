// fp16/bf16 storage for the ZO kernels: conversion to fp32, round-to-nearest-even, round-toward-zero and
// stochastic rounding from fp32. The host code is bit arithmetic; the device uses the cvt intrinsics,
// which give the same bits for every non-NaN input (NaN payloads may differ). Tests pin the host side
// to c10::Half / c10::BFloat16 and the device side to the host.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/philox.h"  // ZO2_HD

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace zo2::kernels {

// Storage words; `bits` is the IEEE binary16 / bfloat16 encoding.
struct Half {
  uint16_t bits;
};
struct BFloat {
  uint16_t bits;
};

ZO2_HD inline uint32_t f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
ZO2_HD inline float bits_f32(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

ZO2_HD inline float to_float(float x) { return x; }
ZO2_HD inline float to_float(BFloat h) { return bits_f32(uint32_t(h.bits) << 16); }
ZO2_HD inline float to_float(Half h) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(h.bits));
#else
  const uint32_t sign = uint32_t(h.bits & 0x8000u) << 16, e = (h.bits >> 10) & 0x1Fu, m = h.bits & 0x3FFu;
  if (e == 0) {  // zero or subnormal: m * 2^-24, exact
    const float v = float(m) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (e == 31) return bits_f32(sign | 0x7F800000u | (m << 13));
  return bits_f32(sign | ((e + 112) << 23) | (m << 13));
#endif
}

// Bit-level conversions from fp32 (the host path), to nearest-even (kNearest) or toward zero. NaN
// stays a quiet NaN.
template <bool kNearest>
ZO2_HD inline BFloat bfloat_from_float(float x) {
  const uint32_t u = f32_bits(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return BFloat{uint16_t((u >> 16) | 0x40u)};
  return BFloat{uint16_t((kNearest ? u + 0x7FFFu + ((u >> 16) & 1u) : u) >> 16)};  // carries reach inf
}
template <bool kNearest>
ZO2_HD inline Half half_from_float(float x) {
  const uint32_t u = f32_bits(x), a = u & 0x7FFFFFFFu;
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  if (a > 0x7F800000u) return Half{uint16_t(sign | 0x7E00u)};
  if (a >= (kNearest ? 0x477FF000u : 0x7F800000u)) return Half{uint16_t(sign | 0x7C00u)};  // inf; RNE >= 65520
  if (!kNearest && a >= 0x477FE000u) return Half{uint16_t(sign | 0x7BFFu)};  // RZ saturates at 65504
  if (a < 0x38800000u) {                      // below 2^-14: subnormal, m = |x| * 2^24
    const float v = bits_f32(a) * 16777216.f;  // exact, < 1024
    uint32_t m = uint32_t(v);
    const float rem = v - float(m);
    if (kNearest && (rem > 0.5f || (rem == 0.5f && (m & 1u)))) ++m;  // 1024 becomes the smallest normal
    return Half{uint16_t(sign | m)};
  }
  const uint32_t r = a - 0x38000000u;  // rebias the exponent 127 -> 15
  return Half{uint16_t(sign | ((kNearest ? r + 0xFFFu + ((r >> 13) & 1u) : r) >> 13))};
}

// Round to nearest, ties to even (overflow gives inf), and toward zero (finite input saturates at
// the largest finite value).
template <class T>
ZO2_HD T round_rne(float x);
template <class T>
ZO2_HD T round_rz(float x);
template <>
ZO2_HD inline float round_rne<float>(float x) {
  return x;
}
template <>
ZO2_HD inline BFloat round_rne<BFloat>(float x) {
#if defined(__CUDA_ARCH__)
  return BFloat{__bfloat16_as_ushort(__float2bfloat16_rn(x))};
#else
  return bfloat_from_float<true>(x);
#endif
}
template <>
ZO2_HD inline Half round_rne<Half>(float x) {
#if defined(__CUDA_ARCH__)
  return Half{__half_as_ushort(__float2half_rn(x))};
#else
  return half_from_float<true>(x);
#endif
}
template <>
ZO2_HD inline BFloat round_rz<BFloat>(float x) {
#if defined(__CUDA_ARCH__)
  return BFloat{__bfloat16_as_ushort(__float2bfloat16_rz(x))};
#else
  return bfloat_from_float<false>(x);
#endif
}
template <>
ZO2_HD inline Half round_rz<Half>(float x) {
#if defined(__CUDA_ARCH__)
  return Half{__half_as_ushort(__float2half_rz(x))};
#else
  return half_from_float<false>(x);
#endif
}

// round_rne of N values; the device converts pairs with one instruction each (same bits).
template <class T, int N>
ZO2_HD inline void round_rne_n(const float (&x)[N], T (&o)[N]) {
#if defined(__CUDA_ARCH__)
  if constexpr (N % 2 == 0 && (sizeof(T) == 2)) {
    ZO2_UNROLL
    for (int j = 0; j < N; j += 2) {
      uint32_t w;  // cvt puts its first source in the upper half
      if constexpr (std::is_same_v<T, Half>)
        asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(w) : "f"(x[j + 1]), "f"(x[j]));
      else
        asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(w) : "f"(x[j + 1]), "f"(x[j]));
      o[j].bits = uint16_t(w);
      o[j + 1].bits = uint16_t(w >> 16);
    }
  } else
#endif
  {
    for (int j = 0; j < N; ++j) o[j] = round_rne<T>(x[j]);
  }
}

// Stochastic rounding: the neighbour away from zero with probability (|x| - |lo|) / ulp, where lo is
// x rounded toward zero, decided by comparing the uniform word r with that probability in 32-bit
// fixed point (so the result is unbiased to 2^-32 of an ulp, and exact values map to themselves).
// Beyond the largest finite value the step to inf counts as one ulp of the top binade, so finite
// input never gives NaN. The same function on host and device.
template <class T>
ZO2_HD T round_stochastic_general(float x, uint32_t r) {
  const T lo = round_rz<T>(x);
  const float alo = fabsf(to_float(lo));
  const float d = fabsf(x) - alo;  // exact: Sterbenz for normal lo, common quantum below
  if (!(d > 0.f)) return lo;       // exact, inf or NaN
  const uint16_t m = lo.bits & 0x7FFFu;
  const float next = fabsf(to_float(T{uint16_t(m + 1)}));
  const bool next_is_inf = next > 3.40282347e38f;
  const float step = next_is_inf ? alo - fabsf(to_float(T{uint16_t(m - 1)})) : next - alo;  // a power of 2
  const float p = fminf(d / step, 1.f);  // exact quotient
  const bool up = uint64_t(r) < uint64_t(p * 4294967296.f);
  return up ? T{uint16_t(lo.bits + 1)} : lo;
}
// The same decision without a division where the 16-bit ulp is 2^s fp32 ulps of x (s dropped low bits
// d of x's word): add n = ~r >> (32 - s) = 2^s - 1 - (r >> (32 - s)) to the word and truncate; the
// carry out of the dropped bits, d + n >= 2^s, happens iff r >> (32 - s) < d, i.e. iff r < d 2^(32-s)
// = floor(p 2^32). fp16: s = 13 for normals (2^-14 <= |x| < 65504), s = 126 - e below 2^-14 (e: x's
// biased exponent, the quantum is 2^-24; real weights put ~0.2% of values there, too many for a
// branch), and the hardware's conversion of the truncated word does the rebias exactly; fp32
// zeros and subnormals add less than 2^23 and truncate to a signed zero as they should. bf16: s = 16
// everywhere below its largest finite value. Bitwise the general function's result where it applies;
// elsewhere (fp16 |x| < 2^-24, zero included, or >= 65504, bf16's top ulp, inf, NaN) it sets `rare`
// (its result is then meaningless), so a caller can round a whole tile branch-free and redo it only
// when needed.
template <class T>
ZO2_HD T round_stochastic_fast(float x, uint32_t r, bool& rare);
// x >> n for any n, 0 from n = 32 on (one clamping funnel shift on the device).
ZO2_HD inline uint32_t shr_clamped(uint32_t x, uint32_t n) {
#if defined(__CUDA_ARCH__)
  return __funnelshift_rc(x, 0u, n);
#else
  return n < 32 ? x >> n : 0u;
#endif
}
template <>
ZO2_HD inline Half round_stochastic_fast<Half>(float x, uint32_t r, bool& rare) {
  const uint32_t b = f32_bits(x), a = b & 0x7FFFFFFFu, e = a >> 23;
  // One range test: 2^-24 <= |x| < 65504 + 16 (e >= 103) is common; zeros and fp32 subnormals, which the
  // formula would round right too, count as rare with the rest (a rounded update is hardly ever 0).
  rare |= a - 0x33800000u >= 0x477FE000u - 0x33800000u;
  // 32 - s = min(e, 113) - 94 where it matters (e >= 103).
  const uint32_t sh = (e < 113u ? e : 113u) - 94u;
  // The dropped bits are cleared before converting: a carry into the next binade can lower s there.
  return round_rz<Half>(bits_f32((b + shr_clamped(~r, sh)) & ~shr_clamped(0xFFFFFFFFu, sh)));
}
template <>
ZO2_HD inline BFloat round_stochastic_fast<BFloat>(float x, uint32_t r, bool& rare) {
  const uint32_t b = f32_bits(x);
  rare |= (b & 0x7FFFFFFFu) >= 0x7F7F0000u;
  return BFloat{uint16_t((b + (~r >> 16)) >> 16)};
}
template <>
ZO2_HD inline float round_stochastic_fast<float>(float x, uint32_t, bool&) {
  return x;
}
template <class T>
ZO2_HD T round_stochastic(float x, uint32_t r) {
  bool rare = false;
  const T y = round_stochastic_fast<T>(x, r, rare);
  if constexpr (sizeof(T) == 2) {
    if (rare) return round_stochastic_general<T>(x, r);
  }
  return y;
}

}  // namespace zo2::kernels
