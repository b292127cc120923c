// CUDA ZO kernels against their CPU twins: z within 1e-6 absolute (the max is printed for docs/zo.md),
// bitwise identical results across launch shapes and alignments, the fused update within the tolerance
// that z's difference allows, 16-bit rounding bitwise equal to the CPU's, stochastic rounding's mean,
// lr = 0, gathers. ZoKernelsGpuBench.DISABLED_* is the bandwidth micro-benchmark (scripts/bench).
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "common/zo_kernels_ref.h"

#if defined(ZO2_WITH_CUDA)
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <cstdio>

#include "kernels/zo_kernels.h"

namespace zo2::kernels {
namespace {

using test::all_dtypes;
using test::bits;
using test::dtype_name;
using test::Case;
using test::make_case;
using test::random_theta;
using test::scalar_type;

void* stream() { return c10::cuda::getCurrentCUDAStream().stream(); }
at::TensorOptions on_gpu(at::ScalarType t) { return at::TensorOptions().dtype(t).device(at::kCUDA); }

at::Tensor gpu_z(int64_t n, uint64_t key, uint32_t param, uint32_t dir, uint64_t offset, int blocks = 0,
                 int threads = 0) {
  at::Tensor z = at::empty({n}, on_gpu(at::kFloat));
  cuda::normal(z.data_ptr<float>(), n, key, param, dir, offset, stream(), blocks, threads);
  return z.cpu();
}
at::Tensor cpu_z(int64_t n, uint64_t key, uint32_t param, uint32_t dir, uint64_t offset) {
  at::Tensor z = at::empty({n}, at::kFloat);
  cpu::normal(z.data_ptr<float>(), n, key, param, dir, offset);
  return z;
}

// theta and copies after one update_perturb on the CPU or the GPU (out_stride n + pad).
struct Result {
  at::Tensor theta, out;
};
Result run_cpu(const at::Tensor& theta0, DType td, uint32_t param, Case c, int64_t pad = 0) {
  const int64_t n = theta0.numel();
  Result r{theta0.clone(), at::zeros({c.pt.nbranch, n + pad}, scalar_type(c.pt.out_dtype))};
  c.pt.out = r.out.data_ptr();
  c.pt.out_stride = n + pad;
  cpu::update_perturb(r.theta.data_ptr(), td, n, param, c.up, c.pt);
  return r;
}
// elem_offset > 0 places theta and the copies that many elements past a 256-byte boundary, so the
// kernel takes its element-wise path.
Result run_gpu(const at::Tensor& theta0, DType td, uint32_t param, Case c, int64_t pad = 0, int blocks = 0,
               int threads = 0, int64_t elem_offset = 0) {
  const int64_t n = theta0.numel();
  at::Tensor tbuf = at::zeros({n + elem_offset}, on_gpu(scalar_type(td)));
  at::Tensor theta = tbuf.slice(0, elem_offset);
  theta.copy_(theta0);
  at::Tensor obuf = at::zeros({c.pt.nbranch * (n + pad) + elem_offset}, on_gpu(scalar_type(c.pt.out_dtype)));
  c.pt.out = static_cast<char*>(obuf.data_ptr()) + elem_offset * obuf.element_size();
  c.pt.out_stride = n + pad;
  cuda::update_perturb(theta.data_ptr(), td, n, param, c.up, c.pt, stream(), blocks, threads);
  return {theta.cpu(), obuf.slice(0, elem_offset).view({c.pt.nbranch, n + pad}).cpu()};
}

TEST(ZoKernelsGpu, NormalMatchesCpuWithin1e6) {
  ZO2_SKIP_WITHOUT_CUDA();
  struct Stream {
    uint64_t key;
    uint32_t param, dir;
    uint64_t offset;
  };
  const int64_t n = (1 << 20) + 3;
  double worst = 0;
  int64_t total = 0;
  for (const Stream& s : {Stream{step_key(1, 0), 0, 0, 0}, Stream{step_key(1, 0), 123, 7, 0},
                          Stream{step_key(5, 77), 0xFFFFFFFFu, 0xFFFFFFFFu, 4 * 0xFFFFFFF0ull + 1},
                          Stream{~0ull, 5, 1, 12345}}) {
    const at::Tensor g = gpu_z(n, s.key, s.param, s.dir, s.offset), c = cpu_z(n, s.key, s.param, s.dir, s.offset);
    const at::Tensor diff = (g.to(at::kDouble) - c.to(at::kDouble)).abs();
    const double m = diff.max().item<double>();
    const at::Tensor ulps = diff / test::grid_step(DType::kF32, c.to(at::kDouble));
    std::printf("[ z GPU vs CPU ] param %u dir %u: max |dz| = %.3g, max %.2f fp32 ulps, %.4f%% differ\n", s.param,
                s.dir, m, ulps.max().item<double>(), 100.0 * (diff > 0).to(at::kDouble).mean().item<double>());
    EXPECT_LT(m, 1e-6) << "param " << s.param;
    worst = std::max(worst, m);
    total += n;
  }
  std::printf("[ z GPU vs CPU ] max |z_gpu - z_cpu| = %.3g over %lld elements\n", worst, (long long)total);

  // cuRAND's own curand_normal4 at the same counters: same stream and order, up to __sincosf's error.
  const at::Tensor ref = at::empty({n}, on_gpu(at::kFloat));
  cuda::curand_normal4_reference(ref.data_ptr<float>(), n, step_key(1, 0), 0, 0, stream());
  const double dref = (ref.cpu() - gpu_z(n, step_key(1, 0), 0, 0, 0)).abs().max().item<double>();
  std::printf("[ z vs curand_normal4 ] max |dz| = %.3g\n", dref);
  EXPECT_LT(dref, 1e-4);
}

TEST(ZoKernelsGpu, NormalIsBitwiseAcrossLaunchShapes) {
  ZO2_SKIP_WITHOUT_CUDA();
  const int64_t n = 1000003;
  const at::Tensor base = gpu_z(n, step_key(3, 3), 9, 4, 2);
  for (auto [b, t] : {std::pair{1, 32}, {7, 96}, {1000, 1024}, {3, 64}})
    EXPECT_TRUE(at::equal(bits(gpu_z(n, step_key(3, 3), 9, 4, 2, b, t)), bits(base))) << b << "x" << t;
}

// GPU vs CPU: theta differs by at most one rounding step where z's 1e-6 difference moves the fp32 value
// across a rounding boundary (rare: checked to be < 0.1% for 16-bit); copies differ by |scale| 1e-6
// plus theta's difference plus one rounding step.
TEST(ZoKernelsGpu, UpdatePerturbMatchesCpu) {
  ZO2_SKIP_WITHOUT_CUDA();
  at::manual_seed(1);
  const int64_t n = (1 << 20) + 13;
  const uint32_t param = 42;
  for (DType td : all_dtypes())
    for (DType od : all_dtypes())
      for (bool sr : {false, true}) {
        SCOPED_TRACE(std::string("theta ") + dtype_name(td) + " out " + dtype_name(od) + (sr ? " SR" : " RNE"));
        const Case c = make_case(od, sr);
        const at::Tensor theta0 = random_theta(n, td);
        const Result g = run_gpu(theta0, td, param, c, 3), h = run_cpu(theta0, td, param, c, 3);
        const at::Tensor tg = g.theta.to(at::kDouble), th = h.theta.to(at::kDouble);
        const at::Tensor dtheta = (tg - th).abs();
        const double lr_dz = double(c.up.lr) * 2.35 * 1e-6;  // lr * sum |coef| * max |dz|
        EXPECT_TRUE((dtheta <= lr_dz + test::grid_step(td, th) * 1.0001).all().item<bool>());
        if (td != DType::kF32) {
          EXPECT_LT((dtheta > 0).to(at::kDouble).mean().item<double>(), 1e-3);
        }
        for (int b = 0; b < c.pt.nbranch; ++b) {
          const at::Tensor og = g.out[b].slice(0, 0, n).to(at::kDouble), oh = h.out[b].slice(0, 0, n).to(at::kDouble);
          const at::Tensor tol = std::fabs(c.pt.scale[b]) * 1e-6 + dtheta + test::grid_step(od, oh) * 1.0001;
          EXPECT_TRUE(((og - oh).abs() <= tol).all().item<bool>()) << "branch " << b;
        }
      }
}

// Rounding is bitwise the CPU's when z cannot matter: copies with scale 0 are RNE(theta) (fp32 bit
// patterns over the whole range into f16/bf16), and an update with zero coefficients and decay only is
// the same fp32 value on both sides, rounded to nearest or stochastically.
TEST(ZoKernelsGpu, RoundingIsBitwiseTheCpus) {
  ZO2_SKIP_WITHOUT_CUDA();
  const int64_t n = 1 << 20;
  at::Tensor patterns = at::randint(0, 1ll << 32, {n}, at::kLong).to(at::kInt).view(at::kFloat);
  patterns = at::where(at::isnan(patterns) | (patterns == 0), at::ones_like(patterns), patterns);
  for (DType od : {DType::kF16, DType::kBF16}) {
    Case c = make_case(od, false);
    c.up.ndirs = 0;
    c.pt.nbranch = 1;
    c.pt.scale[0] = 0.f;
    const Result g = run_gpu(patterns, DType::kF32, 1, c), h = run_cpu(patterns, DType::kF32, 1, c);
    EXPECT_TRUE(at::equal(bits(g.out), bits(h.out))) << "RNE into " << dtype_name(od);
  }
  for (DType td : {DType::kF16, DType::kBF16})
    for (bool sr : {false, true})
      for (float lr : {0.37f, -0.37f, 1e-4f}) {
        SCOPED_TRACE(std::string(dtype_name(td)) + (sr ? " SR" : " RNE") + " lr " + std::to_string(lr));
        const at::Tensor theta0 = (at::randn({n}, at::kDouble) * at::exp2(at::randint(-30, 16, {n}, at::kDouble)))
                                      .clamp(-65000, 65000).to(scalar_type(td));
        Case c = make_case(DType::kF32, sr);
        std::fill(c.up.coef, c.up.coef + c.up.ndirs, 0.f);
        c.up.lr = lr;
        c.up.wd = 0.9f;
        c.pt.nbranch = 0;
        const Result g = run_gpu(theta0, td, 6, c), h = run_cpu(theta0, td, 6, c);
        EXPECT_TRUE(at::equal(bits(g.theta), bits(h.theta)));
        if (sr || std::fabs(lr) > 0.01f) {  // lr 1e-4 moves 16-bit weights only stochastically
          EXPECT_FALSE(at::equal(bits(g.theta), bits(theta0))) << "the update changed nothing";
        }
      }
}

// Launch shapes and the element-wise (unaligned) path give the same bits as the default launch.
TEST(ZoKernelsGpu, UpdatePerturbIsBitwiseAcrossLaunchShapes) {
  ZO2_SKIP_WITHOUT_CUDA();
  at::manual_seed(2);
  const int64_t n = 300007;
  struct Combo {
    DType td, od;
    bool sr;
  };
  for (const Combo& k : {Combo{DType::kF16, DType::kBF16, true}, Combo{DType::kF32, DType::kF16, false},
                         Combo{DType::kBF16, DType::kF32, true}}) {
    SCOPED_TRACE(std::string("theta ") + dtype_name(k.td) + " out " + dtype_name(k.od));
    const at::Tensor theta0 = random_theta(n, k.td);
    const Case c = make_case(k.od, k.sr);
    const Result base = run_gpu(theta0, k.td, 77, c, 5);
    struct Shape {
      int blocks, threads;
      int64_t offset;
    };
    for (const Shape& s : {Shape{1, 64, 0}, Shape{5, 96, 0}, Shape{4096, 128, 0}, Shape{1, 1024, 0},
                           Shape{0, 0, 1}, Shape{3, 160, 3}}) {
      const Result r = run_gpu(theta0, k.td, 77, c, 5, s.blocks, s.threads, s.offset);
      EXPECT_TRUE(at::equal(bits(r.theta), bits(base.theta))) << s.blocks << "x" << s.threads << "+" << s.offset;
      EXPECT_TRUE(at::equal(bits(r.out), bits(base.out))) << s.blocks << "x" << s.threads << "+" << s.offset;
    }
  }
}

// One launch over several parameters (update_perturb_many) gives each the bits of its own
// update_perturb: sizes that are not multiples of the tile, an unaligned parameter, some not updated.
TEST(ZoKernelsGpu, UpdatePerturbManyIsBitwiseOnePerParameter) {
  ZO2_SKIP_WITHOUT_CUDA();
  at::manual_seed(4);
  for (const auto& [td, od] : {std::pair{DType::kF16, DType::kF16}, {DType::kBF16, DType::kF32}, {DType::kF32, DType::kBF16}}) {
    SCOPED_TRACE(std::string("theta ") + dtype_name(td) + " out " + dtype_name(od));
    const Case c = make_case(od, true);
    const std::vector<int64_t> sizes = {2048, 8192, 5, 4, 777, 4099, 2048, 64, 6, 12288};  // random_theta needs >= 4
    Segments segs;
    std::vector<at::Tensor> thetas, singles;
    std::vector<Result> want;
    int64_t total = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      const at::Tensor theta0 = random_theta(sizes[i], td);
      const int64_t offset = i == 4 ? 1 : 0;  // one parameter off 16-byte alignment
      Case one = c;
      if (i % 3 == 1) one.up.ndirs = 0;  // touched already this step: copies only
      want.push_back(run_gpu(theta0, td, uint32_t(100 + i), one, 0, 0, 0, offset));
      at::Tensor buf = at::zeros({sizes[i] + offset}, on_gpu(scalar_type(td)));
      thetas.push_back(buf.slice(0, offset));
      thetas.back().copy_(theta0);
      Segment& s = segs.seg[segs.count++];
      s.theta = thetas.back().data_ptr();
      s.n = sizes[i];
      s.param = uint32_t(100 + i);
      s.out_offset = total + (i == 6 ? 3 : 0);  // one copy off alignment too
      s.update = i % 3 != 1;
      total = s.out_offset + sizes[i];
    }
    at::Tensor out = at::zeros({c.pt.nbranch, total}, on_gpu(scalar_type(od)));
    PerturbSpec pt = c.pt;
    pt.out = out.data_ptr();
    pt.out_stride = total;
    cuda::update_perturb_many(segs, td, c.up, pt, stream());
    const at::Tensor got = out.cpu();
    for (int i = 0; i < segs.count; ++i) {
      EXPECT_TRUE(at::equal(bits(thetas[i].cpu()), bits(want[i].theta))) << "parameter " << i;
      EXPECT_TRUE(at::equal(bits(got.narrow(1, segs.seg[i].out_offset, sizes[i]).contiguous()), bits(want[i].out)))
          << "copies of parameter " << i;
    }
  }
}

// Same protocol as ZoKernelsCpu.StochasticRoundingIsUnbiased, on 2^20 elements.
TEST(ZoKernelsGpu, StochasticRoundingIsUnbiased) {
  ZO2_SKIP_WITHOUT_CUDA();
  const int64_t n = 1 << 20;
  const int steps = 100;
  for (auto [d, t0] : {std::pair{DType::kBF16, 1.5}, {DType::kF16, 1.5}, {DType::kF16, -3e-6}}) {
    SCOPED_TRACE(std::string(dtype_name(d)) + " t0 " + std::to_string(t0));
    at::Tensor theta = at::full({n}, t0, on_gpu(at::kDouble)).to(scalar_type(d));
    const double start = theta[0].item<double>();
    UpdateSpec up;
    up.ndirs = 1;
    up.lr = 1e-3f;
    up.wd = 0.1f;
    double expect = start;
    for (int k = 0; k < steps; ++k) {
      up.key = step_key(99, k);
      cuda::update_perturb(theta.data_ptr(), d, n, 8, up, PerturbSpec{}, stream());
      expect -= double(up.lr) * (double(up.wd) * expect);
    }
    const double mean = theta.to(at::kDouble).mean().item<double>();
    const double ulp = test::grid_step(d, at::tensor({start}, at::kDouble)).item<double>();
    EXPECT_NEAR(mean, expect, 6 * ulp * std::sqrt(steps / (4.0 * n)));
    std::printf("[ SR mean ] %s t0 %g: mean %.9g, float64 %.9g, start %.9g\n", dtype_name(d), t0, mean, expect,
                start);
  }
}

TEST(ZoKernelsGpu, ZeroLrLeavesWeightsBitwise) {
  ZO2_SKIP_WITHOUT_CUDA();
  at::manual_seed(3);
  const int64_t n = 100003;
  for (DType td : all_dtypes())
    for (bool sr : {false, true}) {
      SCOPED_TRACE(std::string(dtype_name(td)) + (sr ? " SR" : " RNE"));
      at::Tensor theta0 = random_theta(n, td);
      theta0[5] = 1e-7;  // subnormal in fp16
      at::Tensor theta = theta0.to(at::kCUDA);
      at::Tensor out = at::empty({3, n}, on_gpu(at::kBFloat16));
      for (int step = 0; step < 50; ++step) {
        Case c = make_case(DType::kBF16, sr, step);
        c.pt.out = out.data_ptr();
        c.pt.out_stride = n;
        c.up.lr = 0.f;
        cuda::update_perturb(theta.data_ptr(), td, n, 3, c.up, c.pt, stream());
        c.up.lr = 0.5f;
        c.up.wd = 0.f;
        std::fill(c.up.coef, c.up.coef + c.up.ndirs, 0.f);
        cuda::update_perturb(theta.data_ptr(), td, n, 3, c.up, c.pt, stream());
      }
      EXPECT_TRUE(at::equal(bits(theta.cpu()), bits(theta0)));
    }
}

// GPU gather equals the GPU update_perturb rows bitwise, and the CPU gather within z's tolerance.
TEST(ZoKernelsGpu, GatherPerturbEqualsUpdatePerturbRows) {
  ZO2_SKIP_WITHOUT_CUDA();
  at::manual_seed(4);
  const int64_t vocab = 1000, dim = 771;
  const at::Tensor rows = at::randint(0, vocab, {4096}, at::kLong);
  const int64_t nr = rows.numel();
  for (DType td : all_dtypes())
    for (DType od : all_dtypes()) {
      SCOPED_TRACE(std::string("table ") + dtype_name(td) + " out " + dtype_name(od));
      const at::Tensor table = random_theta(vocab * dim, td);
      Case c = make_case(od, false);
      c.up.ndirs = 0;
      const Result full = run_gpu(table, td, 4, c);
      at::Tensor got = at::empty({c.pt.nbranch, nr * dim}, on_gpu(scalar_type(od)));
      c.pt.out = got.data_ptr();
      c.pt.out_stride = nr * dim;
      const at::Tensor table_gpu = table.to(at::kCUDA), rows_gpu = rows.to(at::kCUDA);
      cuda::gather_perturb(table_gpu.data_ptr(), td, dim, rows_gpu.data_ptr<int64_t>(), nr, 4, c.pt, stream());
      const at::Tensor want = full.out.view({c.pt.nbranch, vocab, dim}).index_select(1, rows).reshape({c.pt.nbranch, -1});
      EXPECT_TRUE(at::equal(bits(got.cpu()), bits(want)));

      at::Tensor host = at::empty({c.pt.nbranch, nr * dim}, scalar_type(od));
      c.pt.out = host.data_ptr();
      cpu::gather_perturb(table.data_ptr(), td, dim, rows.data_ptr<int64_t>(), nr, 4, c.pt);
      const at::Tensor oh = host.to(at::kDouble);
      EXPECT_TRUE(((got.cpu().to(at::kDouble) - oh).abs() <= 0.5e-6 + test::grid_step(od, oh) * 1.0001).all().item<bool>());
    }
}

// Bandwidth of update_perturb on an 8192 x 8192 matrix next to a device-to-device copy in the same
// run. Bytes moved: theta read once, written once, plus one write per copy (fp16: 2 + 3 * 2 per
// element with two copies). Run with --gtest_also_run_disabled_tests (scripts/bench/bench_kernels.sh).
TEST(ZoKernelsGpuBench, DISABLED_UpdatePerturbBandwidth) {
  ZO2_SKIP_WITHOUT_CUDA();
  const int64_t n = 8192ll * 8192;
  cudaStream_t s = static_cast<cudaStream_t>(stream());
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  auto time_ms = [&](auto&& fn) {
    for (int i = 0; i < 3; ++i) fn();
    const int iters = 20;
    cudaEventRecord(e0, s);
    for (int i = 0; i < iters; ++i) fn();
    cudaEventRecord(e1, s);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    return double(ms) / iters;
  };
  {
    at::Tensor a = at::randn({n}, on_gpu(at::kHalf)), b = at::empty_like(a);
    const double ms = time_ms([&] { cudaMemcpyAsync(b.data_ptr(), a.data_ptr(), 2 * n, cudaMemcpyDeviceToDevice, s); });
    std::printf("[ bench ] D2D copy fp16 8192^2: %.3f ms, %.0f GB/s (read + write)\n", ms, 4.0 * n / ms / 1e6);
  }
  struct Variant {
    const char* name;
    DType td, od;
    int ndirs, nbranch;
    bool sr;
  };
  for (const Variant& v : {Variant{"f16 update(q=1,SR) + 2 copies", DType::kF16, DType::kF16, 1, 2, true},
                           Variant{"f16 update(q=1,RNE) + 2 copies", DType::kF16, DType::kF16, 1, 2, false},
                           Variant{"f16 copies only (2)", DType::kF16, DType::kF16, 0, 2, false},
                           Variant{"f16 update only (q=1,SR)", DType::kF16, DType::kF16, 1, 0, true},
                           Variant{"bf16 update(q=4,SR) + 2 copies", DType::kBF16, DType::kBF16, 4, 2, true},
                           Variant{"f32 update(q=1) + 2 f32 copies", DType::kF32, DType::kF32, 1, 2, false}}) {
    at::Tensor theta = at::randn({n}, on_gpu(scalar_type(v.td))) * 0.02;
    at::Tensor out = at::empty({std::max(v.nbranch, 1), n}, on_gpu(scalar_type(v.od)));
    UpdateSpec up;
    up.ndirs = v.ndirs;
    up.key = step_key(1, 1);
    for (int k = 0; k < v.ndirs; ++k) up.dir[k] = k, up.coef[k] = 0.1f;
    up.lr = 1e-6f;
    up.stochastic_round = v.sr;
    PerturbSpec pt;
    pt.nbranch = v.nbranch;
    pt.key = step_key(1, 2);
    pt.scale[0] = 1e-3f, pt.scale[1] = -1e-3f;
    pt.out = out.data_ptr();
    pt.out_dtype = v.od;
    pt.out_stride = n;
    const double ms = time_ms([&] { cuda::update_perturb(theta.data_ptr(), v.td, n, 0, up, pt, stream()); });
    const double bytes = double(n) * (theta.element_size() * (1 + (v.ndirs > 0)) + out.element_size() * v.nbranch);
    std::printf("[ bench ] %-34s %.3f ms, %.0f GB/s, %.1f Gelem/s\n", v.name, ms, bytes / ms / 1e6, n / ms / 1e6);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
}

}  // namespace
}  // namespace zo2::kernels

#else
TEST(ZoKernelsGpu, NeedsCudaBuild) { GTEST_SKIP() << "zo2 built without ZO2_WITH_CUDA"; }
#endif
