// The branch LayerNorm kernel (kernels/layer_norm.cu, reached through model/opt_forward's layer_norm)
// against LibTorch's fp64 LayerNorm on the CPU, per branch with that branch's gain and bias, from the
// same rounded inputs. Metric: |y - ref| <= rel * |ref| + abs per element; rel is one ulp of the dtype
// (2^-23 would be exact rounding for fp32; fp32 statistics allow 1e-5), abs covers values near zero.
#include <gtest/gtest.h>

#include <cmath>

#include "common/test_util.h"
#include "model/opt_forward.h"

namespace zo2 {
namespace {

struct Tol {
  double rel, abs;
};
Tol tolerance(at::ScalarType t) {
  if (t == at::kHalf) return {std::ldexp(1.0, -10), 1e-4};
  if (t == at::kBFloat16) return {std::ldexp(1.0, -7), 1e-3};
  return {1e-5, 1e-5};
}

// x [nb, rows, h] placed `offset` elements into a larger buffer (offset 1: not 16-byte aligned, so the
// kernel takes its element-wise path); gain and bias rows `pad` elements apart beyond h (slices of a
// wider buffer, as the batched copies of the vector parameters are).
void check(at::ScalarType dt, int64_t nb, int64_t rows, int64_t h, int64_t offset, int64_t pad) {
  at::manual_seed(nb * 1000 + h + offset);
  const at::Tensor x64 = at::randn({nb, rows, h}, at::kDouble) * 3.0 + 0.75;  // a mean far from 0
  const at::Tensor g64 = 1.0 + 0.2 * at::randn({nb, h}, at::kDouble);
  const at::Tensor b64 = 0.1 * at::randn({nb, h}, at::kDouble);
  const at::TensorOptions gpu = at::TensorOptions().dtype(dt).device(at::kCUDA);
  at::Tensor buf = at::zeros({nb * rows * h + offset}, gpu);
  at::Tensor x = buf.narrow(0, offset, nb * rows * h).view({nb, rows, h});
  x.copy_(x64);
  const at::Tensor g = at::zeros({nb, h + pad}, gpu).narrow(1, 0, h).copy_(g64);
  const at::Tensor b = at::zeros({nb, h + pad}, gpu).narrow(1, 0, h).copy_(b64);
  const at::Tensor y = layer_norm(x, g, b).cpu().to(at::kDouble);

  const Tol tol = tolerance(dt);
  for (int64_t i = 0; i < nb; ++i) {
    // The reference sees the inputs the kernel saw (rounded to dt).
    const at::Tensor ref = at::layer_norm(x[i].cpu().to(at::kDouble), {h}, g[i].cpu().to(at::kDouble),
                                          b[i].cpu().to(at::kDouble), 1e-5);
    const at::Tensor excess = (y[i] - ref).abs() - (tol.rel * ref.abs() + tol.abs);
    EXPECT_LE(excess.max().item<double>(), 0.0)
        << dt << " nb " << nb << " rows " << rows << " h " << h << " offset " << offset
        << " pad " << pad << " branch " << i << ": max |y - ref| " << (y[i] - ref).abs().max().item<double>();
  }
}

TEST(LayerNormGpu, EveryBranchMatchesFp64WithItsOwnGainAndBias) {
  ZO2_SKIP_WITHOUT_CUDA();
  for (at::ScalarType dt : {at::kFloat, at::kHalf, at::kBFloat16})
    for (int64_t nb : {1, 2, 3})
      for (int64_t h : {2048, 40, 37, 5120, 12288, 20480})  // 1, 2, 4 and more packs per thread
        for (int64_t offset : {0, 1})
          for (int64_t pad : {0, 8, 3}) check(dt, nb, 17, h, offset, pad);
}

}  // namespace
}  // namespace zo2
