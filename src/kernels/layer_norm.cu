// One block per row: three passes over the row (sum, squared deviations, output). A thread's packs stay
// in registers where they fit (P of them: every OPT width in 16-bit, fp32 up to 8192), else the later
// passes reread them from L1/L2; either way device memory sees one read and one write of the row, and
// the sums run in the same order.
#include <cuda_runtime.h>

#include <algorithm>
#include <type_traits>

#include "common/check.h"
#include "common/error.h"
#include "kernels/float16.h"
#include "kernels/pack.h"
#include "kernels/layer_norm.h"
#include "kernels/zo_element.h"  // dispatch_dtype

namespace zo2::kernels::cuda {
namespace {

// Sum over the block; `red` holds one partial per warp. Every thread gets the total.
__device__ float block_sum(float s, float* red) {
  ZO2_UNROLL
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = (blockDim.x + 31) / 32;
  __syncthreads();  // `red` may still be read from the previous sum
  if (lane == 0) red[warp] = s;
  __syncthreads();
  s = lane < nwarps ? red[lane] : 0.f;
  ZO2_UNROLL
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  return s;
}

// P > 0: pack p of the row is register i of thread p % blockDim.x, i = p / blockDim.x < P (the
// launch guarantees packs <= P * blockDim.x). P == 0: every pass reads the row again.
template <class T, int V, int P>
__global__ void layer_norm_kernel(const T* __restrict__ x, const T* __restrict__ gain, int64_t gain_stride,
                                  const T* __restrict__ bias, int64_t bias_stride, T* __restrict__ y, int64_t rows,
                                  int h, float eps) {
  __shared__ float red[32];
  const int64_t row = blockIdx.x, branch = row / rows;
  const Pack<T, V>* xr = reinterpret_cast<const Pack<T, V>*>(x + row * h);
  const Pack<T, V>* g = reinterpret_cast<const Pack<T, V>*>(gain + branch * gain_stride);
  const Pack<T, V>* b = reinterpret_cast<const Pack<T, V>*>(bias + branch * bias_stride);
  Pack<T, V>* yr = reinterpret_cast<Pack<T, V>*>(y + row * h);
  const int packs = h / V;
  constexpr int kRegs = P > 0 ? P : 1;
  Pack<T, V> held[kRegs];
  // Calls f(pack index, pack) for the thread's packs in increasing order.
  auto each = [&](auto&& f) {
    if constexpr (P > 0) {
      ZO2_UNROLL
      for (int i = 0; i < P; ++i)
        if (const int p = threadIdx.x + i * blockDim.x; p < packs) f(p, held[i]);
    } else {
      for (int p = threadIdx.x; p < packs; p += blockDim.x) f(p, xr[p]);
    }
  };
  if constexpr (P > 0) {
    ZO2_UNROLL
    for (int i = 0; i < P; ++i)
      if (const int p = threadIdx.x + i * blockDim.x; p < packs) held[i] = xr[p];
  }

  float s = 0.f;
  each([&](int, const Pack<T, V>& v) {
    ZO2_UNROLL
    for (int j = 0; j < V; ++j) s += to_float(v.v[j]);
  });
  const float mean = block_sum(s, red) / float(h);
  float ss = 0.f;
  each([&](int, const Pack<T, V>& v) {
    ZO2_UNROLL
    for (int j = 0; j < V; ++j) {
      const float d = to_float(v.v[j]) - mean;
      ss = fmaf(d, d, ss);
    }
  });
  const float rstd = rsqrtf(block_sum(ss, red) / float(h) + eps);
  each([&](int p, const Pack<T, V>& v) {
    const Pack<T, V> gv = g[p], bv = b[p];
    Pack<T, V> o;
    ZO2_UNROLL
    for (int j = 0; j < V; ++j)
      o.v[j] = round_rne<T>(fmaf((to_float(v.v[j]) - mean) * rstd, to_float(gv.v[j]), to_float(bv.v[j])));
    yr[p] = o;
  });
}

}  // namespace

void layer_norm(const void* x, const void* gain, int64_t gain_stride, const void* bias, int64_t bias_stride, void* y,
                DType dtype, int64_t nb, int64_t rows, int64_t h, float eps, void* stream) {
  ZO2_REQUIRE(nb >= 0 && rows >= 0 && h > 0 && h < (int64_t(1) << 30), "layer_norm: bad shape nb = ", nb,
              ", rows = ", rows, ", h = ", h);
  ZO2_REQUIRE(nb * rows < (int64_t(1) << 31), "layer_norm: ", nb * rows, " rows are more than one launch takes");
  if (nb * rows == 0) return;
  ZO2_REQUIRE(x && gain && bias && y, "layer_norm: null pointer");
  ZO2_REQUIRE(nb == 1 || (gain_stride >= h && bias_stride >= h), "layer_norm: branch strides ", gain_stride, ", ",
              bias_stride, " below h = ", h);
  dispatch_dtype(dtype, "layer_norm", [&](auto t) {
    using T = decltype(t);
    constexpr int kV = 16 / int(sizeof(T));
    const bool vec = h % kV == 0 && gain_stride % kV == 0 && bias_stride % kV == 0 && aligned16(x) &&
                     aligned16(gain) && aligned16(bias) && aligned16(y);
    const int64_t packs = vec ? h / kV : h;
    // One pass of the threads covers the row where it can (at most 512 threads).
    const int threads = int(std::clamp<int64_t>((packs + 31) / 32 * 32, 32, 512));
    auto* s = static_cast<cudaStream_t>(stream);
    const T* xt = static_cast<const T*>(x);
    const T* gt = static_cast<const T*>(gain);
    const T* bt = static_cast<const T*>(bias);
    T* yt = static_cast<T*>(y);
    const int64_t per = (packs + threads - 1) / threads;  // packs per thread
    auto launch = [&](auto v, auto p) {
      layer_norm_kernel<T, decltype(v)::value, decltype(p)::value><<<unsigned(nb * rows), threads, 0, s>>>(
          xt, gt, gain_stride, bt, bias_stride, yt, rows, int(h), eps);
    };
    using One = std::integral_constant<int, 1>;
    using Vec = std::integral_constant<int, kV>;
    if (!vec)
      launch(One{}, std::integral_constant<int, 0>{});
    else if (per <= 1)
      launch(Vec{}, One{});
    else if (per <= 2)
      launch(Vec{}, std::integral_constant<int, 2>{});
    else if (per <= 4)
      launch(Vec{}, std::integral_constant<int, 4>{});
    else
      launch(Vec{}, std::integral_constant<int, 0>{});
    CUDA_CHECK_LAUNCH();
  });
}

}  // namespace zo2::kernels::cuda
