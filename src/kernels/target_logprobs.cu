// One block per row: each thread keeps a running (max, sum of exp(x - max)) over its strided share of
// the row, then the block combines the pairs.
#include <cuda_runtime.h>

#include <cmath>

#include "common/check.h"
#include "common/error.h"
#include "kernels/float16.h"
#include "kernels/pack.h"
#include "kernels/target_logprobs.h"
#include "kernels/zo_element.h"  // dispatch_dtype

namespace zo2::kernels::cuda {
namespace {

constexpr int kThreads = 512;

// (m, s) <- the pair of the union of two sets, s relative to m. -inf maxima (empty sets) stay exact.
__device__ __forceinline__ void combine(float& m, float& s, float m2, float s2) {
  const float hi = fmaxf(m, m2);
  if (hi == -INFINITY) return;
  s = s * expf(m - hi) + s2 * expf(m2 - hi);
  m = hi;
}

template <class T, int V>
__global__ void __launch_bounds__(kThreads) target_logprobs_kernel(const T* __restrict__ logits, int64_t rows,
                                                                  int64_t vocab, const int64_t* __restrict__ targets,
                                                                  float* __restrict__ out, int64_t out_stride) {
  __shared__ float sm[32], ss[32];
  const int64_t row = blockIdx.x, b = row / rows, r = row % rows;
  const T* x = logits + row * vocab;
  float m = -INFINITY, s = 0.f;
  const Pack<T, V>* xp = reinterpret_cast<const Pack<T, V>*>(x);
  for (int64_t p = threadIdx.x; p < vocab / V; p += blockDim.x) {
    const Pack<T, V> v = xp[p];
    float f[V], hi = m;
    ZO2_UNROLL
    for (int j = 0; j < V; ++j) hi = fmaxf(hi, f[j] = to_float(v.v[j]));
    if (hi != -INFINITY) {
      s *= expf(m - hi);
      ZO2_UNROLL
      for (int j = 0; j < V; ++j) s += expf(f[j] - hi);
      m = hi;
    }
  }
  ZO2_UNROLL
  for (int o = 16; o > 0; o >>= 1) combine(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = blockDim.x / 32;
  if (lane == 0) sm[warp] = m, ss[warp] = s;
  __syncthreads();
  if (warp != 0) return;
  m = lane < nwarps ? sm[lane] : -INFINITY;
  s = lane < nwarps ? ss[lane] : 0.f;
  ZO2_UNROLL
  for (int o = 16; o > 0; o >>= 1) combine(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
  if (lane != 0) return;
  const int64_t t = targets[r];
  out[b * out_stride + r] = t >= 0 && t < vocab ? to_float(x[t]) - (m + logf(s)) : NAN;
}

}  // namespace

void target_logprobs(const void* logits, DType dtype, int64_t nb, int64_t rows, int64_t vocab, const int64_t* targets,
                     float* out, int64_t out_stride, void* stream) {
  ZO2_REQUIRE(nb >= 0 && rows >= 0 && vocab > 0, "target_logprobs: bad shape nb = ", nb, ", rows = ", rows,
              ", vocab = ", vocab);
  ZO2_REQUIRE(nb * rows < (int64_t(1) << 31), "target_logprobs: ", nb * rows, " rows are more than one launch takes");
  ZO2_REQUIRE(nb <= 1 || out_stride >= rows, "target_logprobs: out_stride ", out_stride, " < ", rows, " rows");
  if (nb * rows == 0) return;
  ZO2_REQUIRE(logits && targets && out, "target_logprobs: null pointer");
  dispatch_dtype(dtype, "target_logprobs", [&](auto t) {
    using T = decltype(t);
    constexpr int kV = 16 / int(sizeof(T));
    auto* s = static_cast<cudaStream_t>(stream);
    const T* x = static_cast<const T*>(logits);
    if (vocab % kV == 0 && aligned16(logits))
      target_logprobs_kernel<T, kV><<<unsigned(nb * rows), kThreads, 0, s>>>(x, rows, vocab, targets, out, out_stride);
    else
      target_logprobs_kernel<T, 1><<<unsigned(nb * rows), kThreads, 0, s>>>(x, rows, vocab, targets, out, out_stride);
    CUDA_CHECK_LAUNCH();
  });
}

}  // namespace zo2::kernels::cuda
