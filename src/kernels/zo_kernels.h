// Zeroth-order kernels: counter-based directions z, the fused "pending update + perturbed copies"
// pass, and perturbed embedding-row gathers. Torch-free (raw pointers), so the .cu sources also build
// where LibTorch has no CUDA. Each kernel has a CPU twin with the same arithmetic (kernels_cpu.cpp).
//
// RNG contract (docs/zo.md): element i of parameter p in direction d of a step with key K is
//   z = normal4(Philox4x32-10(key = K, counter = (lo(i/4), hi(i/4), lo(S), hi(S))))[i % 4],
//   S = (uint64(d) << 32) | p,
// where the words are cuRAND's curand_init(K, S, 4 * (i / 4)) followed by curand4() and normal4 is
// curand_normal4's Box-Muller with accurate log/sincospi (zo_element.h), so z does not depend on the
// launch shape; CPU and GPU z agree within 1e-6. Stochastic rounding takes its uniform from a hash of
// (K, p, i) of the step being applied (rounding_word in zo_element.h).
#pragma once

#include <cstdint>

namespace zo2::kernels {

enum class DType : int { kF32 = 0, kF16 = 1, kBF16 = 2 };

constexpr int kMaxDirs = 64;                     // directions in one update (q x ranks)
constexpr int kMaxBranches = 8;                  // perturbed copies written by one pass

// The pending update theta <- theta - lr * (sum_k coef[k] * z_{dir[k]} + wd * theta), coef[k] = g_k / q,
// all in fp32, then rounded to the storage dtype (stochastically when `stochastic_round`). theta is
// not written when ndirs == 0 or lr == 0, so it stays bitwise unchanged.
struct UpdateSpec {
  int ndirs = 0;                 // 0: no update
  uint64_t key = 0;              // key of the step whose directions are applied
  uint32_t dir[kMaxDirs] = {};
  float coef[kMaxDirs] = {};
  float lr = 0.f;
  float wd = 0.f;                // 0 for biases and LayerNorm parameters
  bool stochastic_round = true;  // 16-bit storage only (ignored for fp32)
};

// Perturbed copies of the (updated, stored) parameter: out + b * out_stride receives
// round_to_nearest(out_dtype, fmaf(scale[b], z_{dir[b]}, theta)). Stored weights are never perturbed.
struct PerturbSpec {
  int nbranch = 0;               // 0: update only
  uint64_t key = 0;              // key of the current step
  uint32_t dir[kMaxBranches] = {};
  float scale[kMaxBranches] = {};  // +eps or -eps
  void* out = nullptr;
  DType out_dtype = DType::kF32;
  int64_t out_stride = 0;        // elements between branch copies
};

// One parameter of update_perturb_many (small ones: biases, LayerNorm): its copies go to
// pt.out + b * pt.out_stride + out_offset.
constexpr int kMaxSegments = 16;
struct Segment {
  void* theta = nullptr;
  int64_t n = 0;
  uint32_t param = 0;
  int64_t out_offset = 0;        // elements
  bool update = false;           // apply the UpdateSpec to this parameter (its first touch this step)
};
struct Segments {
  int count = 0;
  Segment seg[kMaxSegments];
};

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
// Philox key of step `step` of a run (docs/zo.md).
inline uint64_t step_key(uint64_t run_seed, uint64_t step) { return splitmix64(splitmix64(run_seed) ^ step); }

// ---- CPU (always built) ----
namespace cpu {
// z for elements [offset, offset + n) of (key, param, dir), as fp32.
void normal(float* out, int64_t n, uint64_t key, uint32_t param, uint32_t dir, uint64_t offset = 0);
// One pass over theta[0..n): apply `up` in place (if any), then write `pt`'s copies.
void update_perturb(void* theta, DType theta_dtype, int64_t n, uint32_t param, const UpdateSpec& up,
                    const PerturbSpec& pt);
// update_perturb of every segment (with `up` where seg.update, else none) in one call; one launch on
// the GPU, where per-parameter launches of a few thousand elements cost more than their work.
void update_perturb_many(const Segments& segs, DType theta_dtype, const UpdateSpec& up, const PerturbSpec& pt);
// out[b][r][j] = table[rows[r]][j] + scale[b] * z(param, rows[r] * dim + j); out_stride = nrows * dim.
void gather_perturb(const void* table, DType table_dtype, int64_t dim, const int64_t* rows, int64_t nrows,
                    uint32_t param, const PerturbSpec& pt);
}  // namespace cpu

// ---- CUDA (built where nvcc exists; callable when zo2 has ZO2_WITH_CUDA) ----
namespace cuda {
// Same functions as cpu::, on device pointers, enqueued on `stream` (a cudaStream_t).
// `blocks`/`threads` override the launch shape (0 = automatic); results do not depend on them.
void normal(float* out, int64_t n, uint64_t key, uint32_t param, uint32_t dir, uint64_t offset, void* stream,
            int blocks = 0, int threads = 0);
void update_perturb(void* theta, DType theta_dtype, int64_t n, uint32_t param, const UpdateSpec& up,
                    const PerturbSpec& pt, void* stream, int blocks = 0, int threads = 0);
void update_perturb_many(const Segments& segs, DType theta_dtype, const UpdateSpec& up, const PerturbSpec& pt,
                         void* stream);
void gather_perturb(const void* table, DType table_dtype, int64_t dim, const int64_t* rows, int64_t nrows,
                    uint32_t param, const PerturbSpec& pt, void* stream);
// Tests only: cuRAND's own curand_init(key, S, 4g) + curand_normal4 (fast __sincosf) per group, to
// show that normal() is cuRAND's stream in cuRAND's order up to the accuracy of __sincosf.
void curand_normal4_reference(float* out, int64_t n, uint64_t key, uint32_t param, uint32_t dir, void* stream);
}  // namespace cuda

}  // namespace zo2::kernels
