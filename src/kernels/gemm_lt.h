// One linear layer as one cuBLASLt matmul: y = alpha * x w^T + bias (+ ReLU) (+ residual), every term in
// the matmul's epilogue. LibTorch's addmm puts the bias there too, but a residual stream added after
// it is one more pass over the activations (read two, write one) per residual: two per block.
// Torch-free; CUDA only (the CPU keeps at::addmm and an add).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/zo_kernels.h"  // DType

namespace zo2::kernels::cuda {

// Row-major and contiguous: x [m, k], w [n, k], y [m, n]; bias [n] or null; residual [m, n] or null
// (not y). All share `dtype`; the product accumulates in fp32:
// y = alpha * sum_j x[i, j] w[o, j] + bias[o] + residual[i, o], then ReLU when `relu` (not with a
// residual). cuBLASLt may round the product to `dtype` before it adds the other terms (the GPU test
// allows one rounding per term), as LibTorch's addmm with a bias may.
// batch > 1: that many such layers in one strided-batched matmul, operand b at pointer + b * stride
// (elements); the residual shares y's stride.
struct LtLinear {
  DType dtype = DType::kF16;
  int64_t m = 0, n = 0, k = 0;
  const void* x = nullptr;
  const void* w = nullptr;
  const void* bias = nullptr;
  const void* residual = nullptr;
  void* y = nullptr;
  float alpha = 1.f;
  bool relu = false;
  int64_t batch = 1;
  int64_t x_stride = 0, w_stride = 0, y_stride = 0, bias_stride = 0;
};

// How many branches of an [m, n] output one matmul should take (1 or 2): two when one branch's output
// tiles (128 x 256) make at most one wave over the multiprocessors (OPT-1.3B's 2048 x 2048 outputs:
// 128 tiles on 132 SMs), or leave the last wave far from full and two branches fill it better
// (OPT-13B's q/k/v/out and fc2 outputs, 2048 x 5120: 320 tiles = 2.4 waves).
int64_t lt_branches_per_matmul(int64_t m, int64_t n);

// Workspace the caller provides to lt_linear (bytes; what LibTorch gives cuBLAS on Hopper).
constexpr size_t kLtWorkspaceBytes = size_t(32) << 20;

// Runs the matmul on `stream` with cuBLASLt's first heuristic algorithm for this shape, dtype,
// epilogue and pointer alignment (cached per process, so a shape always takes the same algorithm and
// runs stay bitwise reproducible). Returns false, having done nothing, where an operand is not 16-byte
// aligned or cuBLASLt offers no algorithm: the caller computes the layer another way.
bool lt_linear(const LtLinear& l, void* workspace, size_t workspace_bytes, void* stream);

}  // namespace zo2::kernels::cuda
