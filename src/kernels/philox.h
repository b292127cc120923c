// Philox4x32-10 (Salmon et al., SC'11) and the counter layout of the zo2 RNG contract (docs/zo.md).
// Shared by the host (.cpp) and the CUDA (.cu) code: on the device the words come from cuRAND's own
// Philox state, on the host from the 10-round function below; tests pin both to the same stream.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#include <curand_kernel.h>
#define ZO2_HD __host__ __device__
#else
#define ZO2_HD
#endif
#if defined(__CUDA_ARCH__)
#define ZO2_UNROLL _Pragma("unroll")
#else
#define ZO2_UNROLL
#endif

namespace zo2::kernels {

struct Philox4 {
  uint32_t w[4];
};

// Philox4x32-10 of counter c under key (k0, k1), as in Random123 and cuRAND's curand_Philox4x32_10.
ZO2_HD inline Philox4 philox4x32_10(Philox4 c, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;  // Weyl increments of the key
      k1 += 0xBB67AE85u;
    }
    const uint64_t p0 = uint64_t(0xD2511F53u) * c.w[0];
    const uint64_t p1 = uint64_t(0xCD9E8D57u) * c.w[2];
    c = Philox4{{uint32_t(p1 >> 32) ^ c.w[1] ^ k0, uint32_t(p1), uint32_t(p0 >> 32) ^ c.w[3] ^ k1,
                 uint32_t(p0)}};
  }
  return c;
}

// Subsequence of direction `dir` of parameter `param`: one stream per (dir, param) under a step's key.
ZO2_HD inline uint64_t subsequence(uint32_t dir, uint32_t param) { return (uint64_t(dir) << 32) | param; }

// The 4 words of group g (elements 4g..4g+3) of subsequence S under key K: counter
// (lo(g), hi(g), lo(S), hi(S)), key (lo(K), hi(K)) -- what curand_init(K, S, 4g) + curand4() returns.
ZO2_HD inline Philox4 philox_group(uint64_t key, uint64_t subseq, uint64_t g) {
  return philox4x32_10(Philox4{{uint32_t(g), uint32_t(g >> 32), uint32_t(subseq), uint32_t(subseq >> 32)}},
                       uint32_t(key), uint32_t(key >> 32));
}

// Words of NG consecutive groups g0..g0+NG-1. The device takes them from cuRAND (one init, then
// curand4 per group; the compiler drops the init's unused Philox evaluations), the host from above.
template <int NG>
ZO2_HD inline void philox_groups(uint64_t key, uint64_t subseq, uint64_t g0, Philox4 (&w)[NG]) {
#if defined(__CUDA_ARCH__)
  curandStatePhilox4_32_10_t st;
  curand_init(key, subseq, 4 * g0, &st);
  ZO2_UNROLL
  for (int j = 0; j < NG; ++j) {
    const uint4 v = curand4(&st);
    w[j] = Philox4{{v.x, v.y, v.z, v.w}};
  }
#else
  for (int j = 0; j < NG; ++j) w[j] = philox_group(key, subseq, g0 + j);
#endif
}

}  // namespace zo2::kernels
