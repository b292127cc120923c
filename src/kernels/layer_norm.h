// LayerNorm over the branches of a zeroth-order forward in one launch: branch b normalises its rows
// with its own (perturbed) gain and bias. LibTorch's layer_norm takes one gain, so the forward made
// one call per branch and stacked the results: twice the launches and one more pass over the output.
// Torch-free; CUDA only (the CPU keeps at::layer_norm).
#pragma once

#include <cstdint>

#include "kernels/zo_kernels.h"  // DType

namespace zo2::kernels::cuda {

// y[b, r, :] = (x[b, r, :] - mean) * rsqrt(var + eps) * gain[b, :] + bias[b, :] for b < nb, r < rows, rows
// of h elements; statistics in fp32 (mean, then the mean squared deviation: no cancellation), the
// result rounded to nearest. x, gain, bias and y share `dtype`; x and y contiguous, gain[b] at
// gain + b * gain_stride (bias likewise): the branch copies may be slices of a wider buffer.
void layer_norm(const void* x, const void* gain, int64_t gain_stride, const void* bias, int64_t bias_stride, void* y,
                DType dtype, int64_t nb, int64_t rows, int64_t h, float eps, void* stream);

}  // namespace zo2::kernels::cuda
