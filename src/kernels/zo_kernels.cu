// CUDA ZO kernels around the shared per-element arithmetic of zo_element.h (torch-free).
//
// update_perturb: one thread handles a tile of 8 elements (2 Philox groups) per grid-stride
// iteration: one 16-byte load of fp16/bf16 theta (two for fp32), the update, one store of theta and
// one store per perturbed copy. Per tile and direction one curand_init + two curand4 give 8 normals
// (2 Philox evaluations), so theta is read once and written at most 1 + nbranch times.
#include <cuda_runtime.h>

#include <algorithm>

#include "common/check.h"
#include "kernels/pack.h"
#include "kernels/zo_element.h"
#include "kernels/zo_kernels.h"

namespace zo2::kernels::cuda {
namespace {

constexpr int kTile = 8;  // elements per thread and iteration
constexpr int kTileGroups = kTile / 4;
constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 16;
// update_perturb's default grid: a few waves of 4 blocks per SM, each thread looping over several
// tiles, so the per-thread set-up (key schedules, rounding base: ~110 uniform instructions per warp)
// is paid once per several tiles rather than per tile (8% of the warp's instructions at one tile per
// thread, by ncu's counts).
constexpr int64_t kUpdateMaxBlocks = 4096;

int launch_blocks(int64_t items, int threads, int blocks, int64_t max_blocks = kMaxBlocks) {
  if (blocks > 0) return blocks;
  return int(std::clamp<int64_t>((items + threads - 1) / threads, 1, max_blocks));
}

void check_shape(const char* fn, int blocks, int threads) {
  ZO2_REQUIRE(blocks >= 0 && threads >= 0 && threads <= 1024, fn, ": launch shape blocks = ", blocks,
              ", threads = ", threads, " (need blocks >= 0, 0 <= threads <= 1024)");
}

// 8 elements of T as 16-byte words (two for fp32, one for fp16/bf16).
template <class T>
__device__ __forceinline__ void load_tile(const T* p, T (&v)[kTile]) {
  constexpr int kWords = int(sizeof(T)) * kTile / 16;
  uint4 raw[kWords];
  ZO2_UNROLL
  for (int q = 0; q < kWords; ++q) raw[q] = reinterpret_cast<const uint4*>(p)[q];
  memcpy(v, raw, sizeof(raw));
}
template <class T>
__device__ __forceinline__ void store_tile(T* p, const T (&v)[kTile]) {
  constexpr int kWords = int(sizeof(T)) * kTile / 16;
  uint4 raw[kWords];
  memcpy(raw, v, sizeof(raw));
  ZO2_UNROLL
  for (int q = 0; q < kWords; ++q) reinterpret_cast<uint4*>(p)[q] = raw[q];
}

// Tiles first_tile, first_tile + step, ... of one parameter; its copies go to out + b * pt.out_stride.
// vec_theta / vec_out: the pointers (and the branch stride) allow 16-byte accesses; the tail tile
// and unaligned tensors take the element-wise path, which computes the same values.
template <class TT, class TO>
__device__ __forceinline__ void update_perturb_tiles(TT* __restrict__ theta, int64_t n, uint32_t param,
                                                     const UpdateSpec& up, const PerturbSpec& pt,
                                                     TO* __restrict__ out, bool update, bool vec_theta, bool vec_out,
                                                     int64_t first_tile, int64_t step) {
  const int64_t ntiles = (n + kTile - 1) / kTile;
  for (int64_t tile = first_tile; tile < ntiles; tile += step) {
    const int64_t i0 = tile * kTile;
    const int m = n - i0 < kTile ? int(n - i0) : kTile;
    const bool full = m == kTile;
    TT th[kTile] = {};
    float t[kTile];
    if (full && vec_theta) {
      load_tile(theta + i0, th);
    } else {
      ZO2_UNROLL  // constant indices keep th in registers
      for (int j = 0; j < kTile; ++j)
        if (j < m) th[j] = theta[i0 + j];
    }
    ZO2_UNROLL
    for (int j = 0; j < kTile; ++j) t[j] = to_float(th[j]);
    if (update) {
      update_tile<kTileGroups>(param, up, uint64_t(tile) * kTileGroups, t, th);
      if (full && vec_theta) {
        store_tile(theta + i0, th);
      } else {
        ZO2_UNROLL
        for (int j = 0; j < kTile; ++j)
          if (j < m) theta[i0 + j] = th[j];
      }
    }
    perturb_tile<kTileGroups, TO>(param, pt, uint64_t(tile) * kTileGroups, t, [&](int b, const TO(&o)[kTile]) {
      TO* dst = out + b * pt.out_stride + i0;
      if (full && vec_out) {
        store_tile(dst, o);
      } else {
        ZO2_UNROLL
        for (int j = 0; j < kTile; ++j)
          if (j < m) dst[j] = o[j];
      }
    });
  }
}

// At most 64 registers: 4 blocks of 256 per SM. Unbounded, ptxas takes 72 (3 blocks); 48 (5 blocks)
// measured slower (issue-bound either way; docs/PERFORMANCE.md).
template <class TT, class TO>
__global__ void __maxnreg__(64) update_perturb_kernel(TT* __restrict__ theta, int64_t n, uint32_t param,
                                      const __grid_constant__ UpdateSpec up, const __grid_constant__ PerturbSpec pt,
                                      bool update, bool vec_theta, bool vec_out) {
  update_perturb_tiles<TT, TO>(theta, n, param, up, pt, static_cast<TO*>(pt.out), update, vec_theta, vec_out,
                               int64_t(blockIdx.x) * blockDim.x + threadIdx.x, int64_t(gridDim.x) * blockDim.x);
}

// Row blockIdx.y of the grid works on segment blockIdx.y.
template <class TT, class TO>
__global__ void __maxnreg__(64) update_perturb_many_kernel(const __grid_constant__ Segments segs,
                                           const __grid_constant__ UpdateSpec up,
                                           const __grid_constant__ PerturbSpec pt, bool vec_stride) {
  const Segment& s = segs.seg[blockIdx.y];
  TO* out = static_cast<TO*>(pt.out) + s.out_offset;
  update_perturb_tiles<TT, TO>(static_cast<TT*>(s.theta), s.n, s.param, up, pt, out, s.update,
                               aligned16(s.theta), vec_stride && aligned16(out),
                               int64_t(blockIdx.x) * blockDim.x + threadIdx.x, int64_t(gridDim.x) * blockDim.x);
}

// One thread per (row, Philox group spanned by the row); rows live in device memory.
template <class TT, class TO>
__global__ void gather_perturb_kernel(const TT* __restrict__ table, int64_t dim, const int64_t* __restrict__ rows,
                                      int64_t nrows, uint32_t param, const __grid_constant__ PerturbSpec pt) {
  TO* __restrict__ out = static_cast<TO*>(pt.out);
  const int64_t groups_per_row = (dim + 6) / 4;  // a row of dim elements spans at most this many groups
  for (int64_t item = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; item < nrows * groups_per_row;
       item += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = item / groups_per_row, base = rows[r] * dim;
    const int64_t g = base / 4 + item % groups_per_row;
    const int64_t lo = max(4 * g, base), hi = min(4 * g + 4, base + dim);
    if (lo >= hi) continue;
    float t[4] = {};
    ZO2_UNROLL
    for (int lane = 0; lane < 4; ++lane)
      if (4 * g + lane >= lo && 4 * g + lane < hi) t[lane] = to_float(table[4 * g + lane]);
    perturb_tile<1, TO>(param, pt, uint64_t(g), t, [&](int b, const TO(&o)[4]) {
      ZO2_UNROLL
      for (int lane = 0; lane < 4; ++lane)
        if (4 * g + lane >= lo && 4 * g + lane < hi) out[b * pt.out_stride + r * dim + (4 * g + lane - base)] = o[lane];
    });
  }
}

// One thread per Philox group overlapping [offset, offset + n).
__global__ void normal_kernel(float* __restrict__ out, int64_t n, uint64_t key, uint64_t subseq, uint64_t offset,
                              bool curand_reference) {
  const uint64_t g_begin = offset / 4, ngroups = (offset + n + 3) / 4 - g_begin;
  for (uint64_t k = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < ngroups;
       k += uint64_t(gridDim.x) * blockDim.x) {
    const uint64_t g = g_begin + k;
    float z[4];
    if (curand_reference) {
      curandStatePhilox4_32_10_t st;
      curand_init(key, subseq, 4 * g, &st);
      const float4 v = curand_normal4(&st);
      z[0] = v.x, z[1] = v.y, z[2] = v.z, z[3] = v.w;
    } else {
      normals<1>(key, subseq, g, z);
    }
    for (int lane = 0; lane < 4; ++lane) {
      const uint64_t i = 4 * g + lane;
      if (i >= offset && i < offset + n) out[i - offset] = z[lane];
    }
  }
}

void launch_normal(float* out, int64_t n, uint64_t key, uint32_t param, uint32_t dir, uint64_t offset,
                   void* stream, int blocks, int threads, bool reference) {
  ZO2_REQUIRE(n >= 0, "normal: n = ", n, " is negative");
  check_shape("normal", blocks, threads);
  if (n == 0) return;
  ZO2_REQUIRE(out, "normal: out is null");
  threads = threads > 0 ? threads : kThreads;
  const int64_t ngroups = int64_t((offset + n + 3) / 4 - offset / 4);
  normal_kernel<<<launch_blocks(ngroups, threads, blocks), threads, 0, static_cast<cudaStream_t>(stream)>>>(
      out, n, key, subsequence(dir, param), offset, reference);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void normal(float* out, int64_t n, uint64_t key, uint32_t param, uint32_t dir, uint64_t offset, void* stream,
            int blocks, int threads) {
  launch_normal(out, n, key, param, dir, offset, stream, blocks, threads, false);
}

void curand_normal4_reference(float* out, int64_t n, uint64_t key, uint32_t param, uint32_t dir, void* stream) {
  launch_normal(out, n, key, param, dir, 0, stream, 0, 0, true);
}

void update_perturb(void* theta, DType theta_dtype, int64_t n, uint32_t param, const UpdateSpec& up,
                    const PerturbSpec& pt, void* stream, int blocks, int threads) {
  check_update_perturb("update_perturb", theta, n, up, pt);
  check_shape("update_perturb", blocks, threads);
  const bool update = has_update(up);
  if (n == 0 || (!update && pt.nbranch == 0)) return;
  threads = threads > 0 ? threads : kThreads;
  const int grid = launch_blocks((n + kTile - 1) / kTile, threads, blocks, kUpdateMaxBlocks);
  dispatch_dtype(theta_dtype, "update_perturb: theta", [&](auto tt) {
    dispatch_dtype(pt.out_dtype, "update_perturb: PerturbSpec.out", [&](auto to) {
      using TT = decltype(tt);
      using TO = decltype(to);
      const bool vec_out = pt.nbranch == 0 || (aligned16(pt.out) && (pt.out_stride * sizeof(TO)) % 16 == 0);
      update_perturb_kernel<TT, TO><<<grid, threads, 0, static_cast<cudaStream_t>(stream)>>>(
          static_cast<TT*>(theta), n, param, up, pt, update, aligned16(theta), vec_out);
      CUDA_CHECK_LAUNCH();
    });
  });
}

void update_perturb_many(const Segments& segs, DType theta_dtype, const UpdateSpec& up, const PerturbSpec& pt,
                         void* stream) {
  check_segments("update_perturb_many", segs, up, pt);
  Segments s = segs;
  int64_t most = 0;
  for (int i = 0; i < s.count; ++i) {
    s.seg[i].update = s.seg[i].update && has_update(up);
    most = std::max(most, s.seg[i].n);
  }
  if (s.count == 0 || most == 0) return;
  const dim3 grid(unsigned(launch_blocks((most + kTile - 1) / kTile, kThreads, 0, kUpdateMaxBlocks)), unsigned(s.count));
  dispatch_dtype(theta_dtype, "update_perturb_many: theta", [&](auto tt) {
    dispatch_dtype(pt.out_dtype, "update_perturb_many: PerturbSpec.out", [&](auto to) {
      using TT = decltype(tt);
      using TO = decltype(to);
      const bool vec_stride = pt.nbranch == 0 || (pt.out_stride * sizeof(TO)) % 16 == 0;
      update_perturb_many_kernel<TT, TO><<<grid, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(s, up, pt, vec_stride);
      CUDA_CHECK_LAUNCH();
    });
  });
}

void gather_perturb(const void* table, DType table_dtype, int64_t dim, const int64_t* rows, int64_t nrows,
                    uint32_t param, const PerturbSpec& pt, void* stream) {
  check_gather("gather_perturb", table, dim, rows, nrows, pt);
  if (dim == 0 || nrows == 0 || pt.nbranch == 0) return;
  const int grid = launch_blocks(nrows * ((dim + 6) / 4), kThreads, 0);
  dispatch_dtype(table_dtype, "gather_perturb: table", [&](auto tt) {
    dispatch_dtype(pt.out_dtype, "gather_perturb: PerturbSpec.out", [&](auto to) {
      using TT = decltype(tt);
      using TO = decltype(to);
      gather_perturb_kernel<TT, TO><<<grid, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
          static_cast<const TT*>(table), dim, rows, nrows, param, pt);
      CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace zo2::kernels::cuda
