// The cuBLASLt linear layer (kernels/gemm_lt.cu: bias, ReLU, scale and residual in the epilogue)
// against an fp64 product on the CPU of the same rounded inputs. Metric per element:
// |y - ref| <= u (2 S + |ref|) + 2 k 2^-24 S + 2^-24, where u is half an ulp of the output dtype,
// S = |alpha| sum_j |x_j w_j| + |b| + |r|: the epilogue may round the product and each sum to the
// output dtype (u S per rounding of a partial value, u |ref| for the last), 2 k 2^-24 S bounds fp32
// accumulation in any order, and 2^-24 covers fp16 subnormal outputs. The first run (one rounding,
// u |ref|, allowed) failed by up to two ulps on shapes whose rows are not 16-byte multiples.
#include <gtest/gtest.h>

#include "common/test_util.h"

#if defined(ZO2_WITH_CUDA)
#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "common/kernel_dtype.h"
#include "kernels/gemm_lt.h"

namespace zo2 {
namespace {

double half_ulp(at::ScalarType t) {
  if (t == at::kHalf) return std::ldexp(1.0, -11);
  if (t == at::kBFloat16) return std::ldexp(1.0, -8);
  return std::ldexp(1.0, -24);
}

// x placed `offset` elements into a larger buffer (offset 1: 2- or 4-byte aligned only, which
// lt_linear turns away).
void check(at::ScalarType dt, int64_t m, int64_t n, int64_t k, bool bias, bool relu, float alpha, bool residual,
           int64_t offset) {
  at::manual_seed(m * 7 + n * 3 + k + offset + (bias ? 1000 : 0) + (residual ? 2000 : 0));
  const at::TensorOptions gpu = at::TensorOptions().dtype(dt).device(at::kCUDA);
  at::Tensor xbuf = at::zeros({m * k + offset}, gpu);
  at::Tensor x = xbuf.narrow(0, offset, m * k).view({m, k}).copy_(at::randn({m, k}, at::kDouble));
  at::Tensor w = (0.05 * at::randn({n, k}, at::kDouble)).to(gpu);
  at::Tensor b = (0.1 * at::randn({n}, at::kDouble)).to(gpu);
  at::Tensor r = at::randn({m, n}, at::kDouble).to(gpu);
  at::Tensor y = at::full({m, n}, std::nan(""), gpu);
  at::Tensor ws = at::empty({int64_t(kernels::cuda::kLtWorkspaceBytes)}, gpu.dtype(at::kByte));
  kernels::cuda::LtLinear l;
  l.dtype = kernel_dtype(dt);
  l.m = m, l.n = n, l.k = k;
  l.x = x.data_ptr(), l.w = w.data_ptr(), l.y = y.data_ptr();
  l.bias = bias ? b.data_ptr() : nullptr;
  l.residual = residual ? r.data_ptr() : nullptr;
  l.alpha = alpha, l.relu = relu;
  const bool ran = kernels::cuda::lt_linear(l, ws.data_ptr(), ws.numel(), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::string what = std::string(c10::toString(dt)) + " m " + std::to_string(m) + " n " + std::to_string(n) +
                           " k " + std::to_string(k) + (bias ? " bias" : "") + (relu ? " relu" : "") + " alpha " +
                           std::to_string(alpha) + (residual ? " residual" : "") + " offset " + std::to_string(offset);
  if (offset != 0) {
    EXPECT_FALSE(ran) << what << ": an operand below 16-byte alignment must be turned away";
    return;
  }
  ASSERT_TRUE(ran) << what << ": no cuBLASLt algorithm for aligned operands";
  const at::Tensor x64 = x.cpu().to(at::kDouble), w64 = w.cpu().to(at::kDouble);
  at::Tensor ref = double(alpha) * at::mm(x64, w64.t());
  at::Tensor S = std::fabs(double(alpha)) * at::mm(x64.abs(), w64.abs().t());
  if (bias) ref += b.cpu().to(at::kDouble), S += b.cpu().to(at::kDouble).abs();
  if (residual) ref += r.cpu().to(at::kDouble), S += r.cpu().to(at::kDouble).abs();
  if (relu) ref = ref.clamp_min(0.0);
  const at::Tensor got = y.cpu().to(at::kDouble);
  const at::Tensor bound =
      half_ulp(dt) * (2.0 * S + ref.abs()) + 2.0 * double(k) * std::ldexp(1.0, -24) * S + std::ldexp(1.0, -24);
  EXPECT_LE(((got - ref).abs() - bound).max().item<double>(), 0.0)
      << what << ": max |y - ref| " << (got - ref).abs().max().item<double>();
}

TEST(GemmLtGpu, EpilogueVariantsMatchFp64) {
  ZO2_SKIP_WITHOUT_CUDA();
  struct Shape {
    int64_t m, n, k;
  };
  for (at::ScalarType dt : {at::kFloat, at::kHalf, at::kBFloat16})
    for (Shape s : {Shape{64, 48, 40}, Shape{256, 512, 128}, Shape{37, 29, 24}, Shape{2048, 8, 2048}})
      for (int64_t offset : {0, 1}) {
        check(dt, s.m, s.n, s.k, false, false, 1.f, false, offset);
        check(dt, s.m, s.n, s.k, true, false, 1.f, false, offset);
        check(dt, s.m, s.n, s.k, true, true, 1.f, false, offset);
        check(dt, s.m, s.n, s.k, false, true, 1.f, false, offset);
        check(dt, s.m, s.n, s.k, true, false, 0.125f, false, offset);
        check(dt, s.m, s.n, s.k, true, false, 1.f, true, offset);
        check(dt, s.m, s.n, s.k, false, false, 1.f, true, offset);
      }
}

// Two layers in one strided-batched matmul (a direction's two branches): x, w, y, residual batch-
// contiguous, the biases rows of a wider buffer (as the batched vector copies are); each member
// against its own fp64 product with the metric above.
TEST(GemmLtGpu, BatchedBranchesMatchFp64) {
  ZO2_SKIP_WITHOUT_CUDA();
  for (at::ScalarType dt : {at::kFloat, at::kHalf, at::kBFloat16})
    for (bool residual : {false, true}) {
      const int64_t m = 96, n = 320, k = 136, pad = 8;
      at::manual_seed(residual ? 5 : 6);
      const at::TensorOptions gpu = at::TensorOptions().dtype(dt).device(at::kCUDA);
      at::Tensor x = at::randn({2, m, k}, at::kDouble).to(gpu);
      at::Tensor w = (0.05 * at::randn({2, n, k}, at::kDouble)).to(gpu);
      at::Tensor b = at::zeros({2, n + pad}, gpu).narrow(1, 0, n).copy_(0.1 * at::randn({2, n}, at::kDouble));
      at::Tensor r = at::randn({2, m, n}, at::kDouble).to(gpu);
      at::Tensor y = at::full({2, m, n}, std::nan(""), gpu);
      at::Tensor ws = at::empty({int64_t(kernels::cuda::kLtWorkspaceBytes)}, gpu.dtype(at::kByte));
      kernels::cuda::LtLinear l;
      l.dtype = kernel_dtype(dt);
      l.m = m, l.n = n, l.k = k, l.batch = 2;
      l.x = x.data_ptr(), l.w = w.data_ptr(), l.y = y.data_ptr(), l.bias = b.data_ptr();
      l.residual = residual ? r.data_ptr() : nullptr;
      l.x_stride = m * k, l.w_stride = n * k, l.y_stride = m * n, l.bias_stride = n + pad;
      l.alpha = residual ? 1.f : 0.125f;
      ASSERT_TRUE(kernels::cuda::lt_linear(l, ws.data_ptr(), ws.numel(), nullptr)) << dt;
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      for (int64_t i = 0; i < 2; ++i) {
        const at::Tensor x64 = x[i].cpu().to(at::kDouble), w64 = w[i].cpu().to(at::kDouble),
                         b64 = b[i].cpu().to(at::kDouble), r64 = r[i].cpu().to(at::kDouble);
        at::Tensor ref = double(l.alpha) * at::mm(x64, w64.t()) + b64;
        at::Tensor S = double(l.alpha) * at::mm(x64.abs(), w64.abs().t()) + b64.abs();
        if (residual) ref += r64, S += r64.abs();
        const at::Tensor got = y[i].cpu().to(at::kDouble);
        const at::Tensor bound =
            half_ulp(dt) * (2.0 * S + ref.abs()) + 2.0 * double(k) * std::ldexp(1.0, -24) * S + std::ldexp(1.0, -24);
        EXPECT_LE(((got - ref).abs() - bound).max().item<double>(), 0.0)
            << dt << (residual ? " residual" : "") << " member " << i << ": max |y - ref| "
            << (got - ref).abs().max().item<double>();
      }
    }
}

// Pairs where one branch's tiles make at most one wave or leave the last wave far from full: two or
// more whole waves keep one branch per matmul, 1.25 waves (fill 0.63; two branches: 2.5 waves, fill
// 0.83) take two, and so does one wave, full or not.
TEST(GemmLtGpu, BranchesPerMatmulFollowWaveFill) {
  ZO2_SKIP_WITHOUT_CUDA();
  int sms = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  EXPECT_EQ(kernels::cuda::lt_branches_per_matmul(128 * 2, 256 * int64_t(sms)), 1);
  EXPECT_EQ(kernels::cuda::lt_branches_per_matmul(128 * 4, 256 * int64_t(sms)), 1);
  EXPECT_EQ(kernels::cuda::lt_branches_per_matmul(128, 256 * int64_t(sms)), 2);
  EXPECT_EQ(kernels::cuda::lt_branches_per_matmul(128, 256 * int64_t(sms - 4)), 2);
  EXPECT_EQ(kernels::cuda::lt_branches_per_matmul(128, 256 * (int64_t(sms) + sms / 4)), 2);
}

TEST(GemmLtGpu, RejectsReluWithResidualAndEmptyShapes) {
  ZO2_SKIP_WITHOUT_CUDA();
  kernels::cuda::LtLinear l;
  l.m = 4, l.n = 4, l.k = 4;
  int dummy[4];
  l.x = l.w = l.residual = dummy;
  l.y = dummy + 1;
  l.relu = true;
  EXPECT_THROW(kernels::cuda::lt_linear(l, nullptr, kernels::cuda::kLtWorkspaceBytes, nullptr), Error);
  l.relu = false;
  l.k = 0;
  EXPECT_FALSE(kernels::cuda::lt_linear(l, nullptr, kernels::cuda::kLtWorkspaceBytes, nullptr));
}

}  // namespace
}  // namespace zo2

#else
TEST(GemmLtGpu, NeedsCudaBuild) { GTEST_SKIP() << "zo2 built without ZO2_WITH_CUDA"; }
#endif
