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
};

// Workspace the caller provides to lt_linear (bytes; what LibTorch gives cuBLAS on Hopper).
constexpr size_t kLtWorkspaceBytes = size_t(32) << 20;

// Runs the matmul on `stream` with cuBLASLt's first heuristic algorithm for this shape, dtype,
// epilogue and pointer alignment (cached per process, so a shape always takes the same algorithm and
// runs stay bitwise reproducible). Returns false, having done nothing, where an operand is not 16-byte
// aligned or cuBLASLt offers no algorithm: the caller computes the layer another way.
bool lt_linear(const LtLinear& l, void* workspace, size_t workspace_bytes, void* stream);

}  // namespace zo2::kernels::cuda
