// CPU ZO kernels: 16-bit rounding against c10, z against a long-double Box-Muller of at::philox_engine
// words, z statistics, the fused update against a float64 reference, lr = 0, stochastic rounding's
// mean, and gather_perturb against update_perturb.
#include <ATen/Parallel.h>
#include <ATen/core/PhiloxRNGEngine.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "common/error.h"
#include "common/zo_kernels_ref.h"
#include "kernels/float16.h"
#include "kernels/zo_element.h"

namespace zo2::kernels {
namespace {

using test::all_dtypes;
using test::dtype_name;
using test::Case;
using test::make_case;
using test::random_theta;
using test::scalar_type;

// Float bit patterns: a stride through all 2^32 plus the edges of the 16-bit formats.
std::vector<float> probe_floats() {
  std::vector<float> v;
  for (uint64_t u = 0; u < (1ull << 32); u += 1021) v.push_back(bits_f32(uint32_t(u)));
  const float edges[] = {0.f, 65504.f, 65519.99f, 65520.f, 65536.f, 6.1035156e-05f, 5.9604645e-08f, 2.9802322e-08f,
                         2.9802326e-08f, 8.940697e-08f, 1.0009765625f, 1.00048828125f, 3.3895314e38f, 3.4028235e38f,
                         1.0039062f, 1.0019531f, 1.0058594f, 9.18355e-41f, 1e-45f};
  for (float e : edges)
    for (float s : {1.f, -1.f}) v.push_back(s * e);
  v.push_back(INFINITY);
  v.push_back(-INFINITY);
  return v;
}

TEST(ZoFloat16, RoundToNearestMatchesC10) {
  for (float x : probe_floats()) {
    const uint16_t h = c10::Half(x).x, b = c10::BFloat16(x).x;
    ASSERT_EQ(round_rne<Half>(x).bits, h) << x << " bits " << std::hex << f32_bits(x);
    if (std::isnan(x))
      ASSERT_TRUE(std::isnan(to_float(round_rne<BFloat>(x))));
    else
      ASSERT_EQ(round_rne<BFloat>(x).bits, b) << x << " bits " << std::hex << f32_bits(x);
  }
  for (uint32_t h = 0; h < 65536; ++h) {  // fp16 -> fp32 for every encoding
    const float ref = float(c10::Half(uint16_t(h), c10::Half::from_bits()));
    const float got = to_float(Half{uint16_t(h)});
    if (std::isnan(ref))
      ASSERT_TRUE(std::isnan(got)) << h;
    else
      ASSERT_EQ(f32_bits(got), f32_bits(ref)) << std::hex << h;
  }
}

// Toward zero: the nearest value (c10) stepped back by one when it lies beyond x; saturates at the
// largest finite value.
template <class T>
uint16_t rz_reference(float x, uint16_t nearest) {
  const uint16_t inf = std::is_same_v<T, Half> ? 0x7C00 : 0x7F80;
  const uint16_t sign = nearest & 0x8000u, mag = nearest & 0x7FFFu;
  if (std::isinf(x)) return nearest;
  if (mag == inf || std::fabs(to_float(T{nearest})) > std::fabs(x)) return uint16_t(sign | (mag - 1));
  return nearest;
}

TEST(ZoFloat16, RoundTowardZero) {
  for (float x : probe_floats()) {
    if (std::isnan(x)) continue;
    ASSERT_EQ(round_rz<Half>(x).bits, rz_reference<Half>(x, c10::Half(x).x)) << x;
    ASSERT_EQ(round_rz<BFloat>(x).bits, rz_reference<BFloat>(x, c10::BFloat16(x).x)) << x;
  }
}

// For 4096 stratified uniforms r = k 2^20 the number rounding up must be ceil(p 4096) with p the
// distance to the lower neighbour in ulps; results are always a neighbour, never NaN.
template <class T>
void check_stochastic(float x) {
  const T lo = round_rz<T>(x), up{uint16_t(lo.bits + 1)};
  const double alo = std::fabs(to_float(lo)), ahi = std::fabs(to_float(up));
  const bool exact = alo == std::fabs(double(x));
  int ups = 0;
  for (uint32_t k = 0; k < 4096; ++k) {
    const T r = round_stochastic<T>(x, k << 20);
    ASSERT_TRUE(r.bits == lo.bits || (!exact && r.bits == up.bits)) << x << " -> " << std::hex << r.bits;
    ups += r.bits == up.bits;
  }
  if (exact) return;
  double step = ahi - alo;
  if (std::isinf(ahi)) step = alo - std::fabs(to_float(T{uint16_t((lo.bits & 0x7FFF) - 1)}));
  const double p = std::min(1.0, (std::fabs(double(x)) - alo) / step);
  EXPECT_NEAR(ups / 4096.0, p, 1.0 / 4096 + 1e-12) << x;
  EXPECT_EQ(round_stochastic<T>(x, 0xFFFFFFFFu).bits, p < 1 ? lo.bits : up.bits) << x;
}

TEST(ZoFloat16, StochasticRoundingPicksANeighbourWithTheRightProbability) {
  std::mt19937 rng(5);
  std::vector<float> xs = {1.5f + 1e-4f, -1.5f - 3e-4f, 65519.f, -65535.f, 1e30f, 3.4e38f, -3.40282e38f,
                           -1e-9f, 3e-8f, 1e-40f, -2.5e-41f, 0.f, -0.f, 1.f, INFINITY};
  for (int i = 0; i < 300; ++i) xs.push_back(std::ldexp(std::uniform_real_distribution<float>(-1, 1)(rng),
                                                         std::uniform_int_distribution<int>(-30, 17)(rng)));
  for (float x : xs) {
    check_stochastic<Half>(x);
    check_stochastic<BFloat>(x);
  }
  EXPECT_TRUE(std::isnan(to_float(round_stochastic<Half>(NAN, 0))));
}

// The integer fast path must be bitwise the general formula: every fp16/bf16 binade's edges, the
// limits of the fast range, and random values with random words (and words at the decision boundary).
TEST(ZoFloat16, StochasticRoundingFastPathIsTheGeneralFormula) {
  std::mt19937 rng(11);
  std::vector<uint32_t> xs;
  for (uint32_t e = 0; e < 256; ++e)
    for (uint32_t m : {0u, 1u, 0x1FFFu, 0x2000u, 0xFFFFu, 0x10000u, 0x7FFFFFu, 0x400000u})
      for (uint32_t sign : {0u, 0x80000000u}) xs.push_back(sign | (e << 23) | m);
  for (uint32_t b : {0x387FFFFFu, 0x38800000u, 0x477FDFFFu, 0x477FE000u, 0x7F7EFFFFu, 0x7F7F0000u, 0x7F800000u})
    xs.insert(xs.end(), {b, b | 0x80000000u});
  for (int i = 0; i < 200000; ++i) xs.push_back(rng());
  for (int i = 0; i < 200000; ++i) xs.push_back((rng() & 0x807FFFFFu) | ((90 + rng() % 24) << 23));  // ~fp16 subnormals
  int64_t checked = 0;
  for (uint32_t b : xs) {
    const float x = bits_f32(b);
    // floor(p 2^32) for fp16 targets below 2^-14 (quantum 2^-24), in long double: r on both sides of it.
    const long double t = std::fabs(static_cast<long double>(x)) * 0x1p24L;
    const uint32_t sub = t < 1024 ? uint32_t(std::floor((t - std::floor(t)) * 0x1p32L)) : 0u;
    const uint32_t rs[] = {0u, 1u, 0xFFFFFFFFu, uint32_t(rng()), (b & 0x1FFFu) << 19, ((b & 0xFFFFu) << 16) - 1,
                           sub, sub - 1, sub + 1};
    for (uint32_t r : rs) {
      const Half h = round_stochastic<Half>(x, r), hg = round_stochastic_general<Half>(x, r);
      const BFloat f = round_stochastic<BFloat>(x, r), fg = round_stochastic_general<BFloat>(x, r);
      if (std::isnan(x)) {
        EXPECT_TRUE(std::isnan(to_float(h)) && std::isnan(to_float(f)));
        continue;
      }
      ASSERT_EQ(h.bits, hg.bits) << std::hex << "fp16 x bits " << b << " r " << r;
      ASSERT_EQ(f.bits, fg.bits) << std::hex << "bf16 x bits " << b << " r " << r;
      ++checked;
    }
  }
  EXPECT_GT(checked, 3000000);
}

// The rounding words: uniform (chi-square over 256 bins of the top byte), and neighbouring elements,
// parameters and steps uncorrelated (correlation of the words as uniforms below 6 standard errors).
TEST(ZoKernelsCpu, RoundingWordsAreUniformAndIndependent) {
  const int64_t n = 1 << 18;
  std::vector<double> cnt(256, 0.0);
  auto u = [](uint32_t w) { return (double(w) + 0.5) / 4294967296.0 - 0.5; };
  double c_next = 0, c_param = 0, c_step = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t el = 4 * 0xFFFFFFF0ull + uint64_t(i) * 3;  // crosses hi(i) = 0 -> 1
    const uint32_t w = rounding_word(step_key(7, 3), 42, el);
    cnt[w >> 24] += 1;
    c_next += u(w) * u(rounding_word(step_key(7, 3), 42, el + 1));
    c_param += u(w) * u(rounding_word(step_key(7, 3), 43, el));
    c_step += u(w) * u(rounding_word(step_key(7, 4), 42, el));
  }
  double chi2 = 0;
  for (double c : cnt) chi2 += (c - n / 256.0) * (c - n / 256.0) / (n / 256.0);
  EXPECT_LT(chi2, 255 + 6 * std::sqrt(2 * 255.0)) << "chi-square, 255 degrees of freedom";
  const double se = (1.0 / 12) / std::sqrt(double(n));  // sd of a product of two independent U(-1/2, 1/2)
  for (double c : {c_next, c_param, c_step}) EXPECT_LT(std::fabs(c / n), 6 * se);
}

// ---- z ----

// Box-Muller of philox_engine's words in long double, the CPU z must be its correctly rounded value.
TEST(ZoKernelsCpu, NormalsAreCorrectlyRoundedBoxMuller) {
  const long double pi = 3.141592653589793238462643383279502884L;
  struct Stream {
    uint64_t key;
    uint32_t param, dir;
    uint64_t offset;
  };
  for (const Stream& s : {Stream{step_key(3, 0), 0, 0, 0}, Stream{step_key(3, 9), 77, 12, 4 * 0xFFFFFFF0ull},
                          Stream{~0ull, 0xFFFFFFFFu, 0xFFFFFFFFu, 4 * 12345ull}}) {
    const int64_t n = 1 << 16;
    std::vector<float> z(n);
    cpu::normal(z.data(), n, s.key, s.param, s.dir, s.offset);
    at::philox_engine eng(s.key, subsequence(s.dir, s.param), s.offset / 4);
    double worst = 0;
    for (int64_t i = 0; i < n; i += 2) {
      const uint32_t a = eng(), b = eng();
      const float u = float(a) * 0x1p-32f + 0x1p-33f, t = float(b) * 0x1p-31f + 0x1p-32f;
      const long double r = std::sqrt(-2.0L * std::log((long double)u));
      const long double ref[2] = {r * std::sin(pi * t), r * std::cos(pi * t)};
      for (int j = 0; j < 2; ++j) {
        if (std::fabs(ref[j]) < 1e-12L) {  // t at a multiple of 1/2: the CPU gives an exact 0
          ASSERT_LT(std::fabs(z[i + j]), 1e-12f);
          continue;
        }
        const double ulp = std::ldexp(1.0, std::ilogb(std::max(std::fabs(z[i + j]), 1e-30f)) - 23);
        worst = std::max(worst, double(std::fabs(z[i + j] - ref[j]) / ulp));
      }
    }
    EXPECT_LE(worst, 0.5 + 1e-6) << "max |z - ref| in fp32 ulps, param " << s.param;
  }
}

// Moments, Kolmogorov-Smirnov and cross-stream correlation on 2^20 samples of fixed seeds. Bounds are
// 6 standard errors (mean, variance, 4th moment, correlation) and the KS quantile of false-positive
// rate 1e-9: P(sqrt(n) D > x) ~ 2 exp(-2 x^2) gives x = 3.27.
TEST(ZoKernelsCpu, NormalStatistics) {
  const int64_t n = 1 << 20;
  const uint64_t key = step_key(2026, 1);
  auto sample = [&](uint32_t param, uint32_t dir) {
    std::vector<float> z(n);
    cpu::normal(z.data(), n, key, param, dir, 0);
    return std::vector<double>(z.begin(), z.end());
  };
  std::vector<double> z = sample(5, 0);
  double m1 = 0, m2 = 0, m4 = 0;
  for (double v : z) m1 += v, m2 += v * v, m4 += v * v * v * v;
  m1 /= n, m2 /= n, m4 /= n;
  EXPECT_LT(std::fabs(m1), 6 / std::sqrt(double(n)));
  EXPECT_LT(std::fabs(m2 - 1), 6 * std::sqrt(2.0 / n));
  EXPECT_LT(std::fabs(m4 - 3), 6 * std::sqrt(96.0 / n));

  std::vector<double> s = z;
  std::sort(s.begin(), s.end());
  double d = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double cdf = 0.5 * std::erfc(-s[i] / std::sqrt(2.0));
    d = std::max({d, cdf - double(i) / n, double(i + 1) / n - cdf});
  }
  EXPECT_LT(std::sqrt(double(n)) * d, 3.27) << "KS statistic " << d;

  for (auto [param, dir] : {std::pair<uint32_t, uint32_t>{5, 1}, {6, 0}, {5, 0xFFFFFFFFu}}) {
    const std::vector<double> o = sample(param, dir);
    double c = 0;
    for (int64_t i = 0; i < n; ++i) c += z[i] * o[i];
    EXPECT_LT(std::fabs(c / n), 6 / std::sqrt(double(n))) << "param " << param << " dir " << dir;
  }
}

// normal() over [offset, offset + n) equals the slice of one large call, for any split.
TEST(ZoKernelsCpu, NormalIsIndependentOfTheOffsetSplit) {
  const uint64_t key = step_key(9, 4), base = 4 * 0xFFFFFFFEull - 3;  // groups cross 2^32
  const int64_t n = 1001;
  std::vector<float> whole(n), parts(n);
  cpu::normal(whole.data(), n, key, 3, 2, base);
  const int64_t cuts[] = {0, 1, 7, 8, 13, 500, 999, n};
  for (size_t c = 0; c + 1 < std::size(cuts); ++c)
    cpu::normal(parts.data() + cuts[c], cuts[c + 1] - cuts[c], key, 3, 2, base + cuts[c]);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(f32_bits(parts[i]), f32_bits(whole[i])) << i;
}

// ---- update_perturb ----

// Against the float64 formula: f32 within the fp32 arithmetic bound plus one rounding; 16-bit RNE one
// of the roundings of values within that bound (and >= 99% exactly RNE of the reference); 16-bit SR a
// neighbour of the reference. Copies: the rounding of theta_new + scale z computed in float64.
TEST(ZoKernelsCpu, UpdatePerturbMatchesFloat64Reference) {
  at::manual_seed(1);
  const int64_t n = 4099;
  const uint32_t param = 17;
  for (DType td : all_dtypes())
    for (DType od : all_dtypes())
      for (bool sr : {false, true}) {
        SCOPED_TRACE(std::string("theta ") + dtype_name(td) + " out " + dtype_name(od) + (sr ? " SR" : " RNE"));
        Case c = make_case(od, sr);
        const at::Tensor theta0 = random_theta(n, td);
        at::Tensor theta = theta0.clone();
        c.pt.out_stride = n + 5;
        at::Tensor out = at::full({c.pt.nbranch, n + 5}, 7.0, scalar_type(od));
        c.pt.out = out.data_ptr();
        cpu::update_perturb(theta.data_ptr(), td, n, param, c.up, c.pt);

        const test::UpdateRef ref = test::update_reference(theta0, param, c.up);
        const at::Tensor got = theta.to(at::kDouble);
        if (sr && td != DType::kF32) {
          const at::Tensor dist = (got - ref.value).abs();
          const at::Tensor bound = test::grid_step(td, ref.value) + ref.err + ref.value.abs() * 1.2e-7;
          EXPECT_TRUE((dist <= bound).all().item<bool>()) << "SR result is not a neighbour";
          EXPECT_GT((got != theta0.to(at::kDouble)).sum().item<int64_t>(), n / 4) << "SR moved too few weights";
        } else {
          EXPECT_TRUE(test::within_rounding(td, ref.value, ref.err, got).all().item<bool>());
          if (td != DType::kF32) {  // fp32 sits within a few fp32 roundings, 16-bit RNE almost always exact
            const double exact = (got == test::round_ref(td, ref.value)).to(at::kDouble).mean().item<double>();
            EXPECT_GE(exact, 0.99) << "fraction equal to the rounded reference";
          }
        }
        for (int b = 0; b < c.pt.nbranch; ++b) {
          const at::Tensor z = test::cpu_z(n, c.pt.key, param, c.pt.dir[b]);
          const at::Tensor pref = got + double(c.pt.scale[b]) * z;
          const at::Tensor ob = out[b].slice(0, 0, n).to(at::kDouble);
          EXPECT_TRUE(test::within_rounding(od, pref, at::zeros_like(pref), ob).all().item<bool>()) << "branch " << b;
          EXPECT_TRUE((out[b].slice(0, n).to(at::kDouble) == 7.0).all().item<bool>()) << "wrote past n";
        }
      }
}

// lr = 0 leaves theta bitwise unchanged in every dtype after many steps, with and without SR; a nonzero
// lr with zero coefficients and no decay must also (exact values round to themselves).
TEST(ZoKernelsCpu, ZeroUpdateLeavesWeightsBitwise) {
  at::manual_seed(2);
  const int64_t n = 1027;
  for (DType td : all_dtypes())
    for (bool sr : {false, true}) {
      SCOPED_TRACE(std::string(dtype_name(td)) + (sr ? " SR" : " RNE"));
      at::Tensor theta0 = random_theta(n, td);
      theta0[5] = 1e-7;  // subnormal in fp16
      theta0[6] = -65504.0;
      at::Tensor theta = theta0.clone();
      at::Tensor out = at::empty({3, n}, at::kBFloat16);
      for (int step = 0; step < 50; ++step) {
        Case c = make_case(DType::kBF16, sr, step);
        c.pt.out = out.data_ptr();
        c.pt.out_stride = n;
        c.up.lr = 0.f;
        cpu::update_perturb(theta.data_ptr(), td, n, 3, c.up, c.pt);
        c.up.lr = 0.5f;
        c.up.wd = 0.f;
        std::fill(c.up.coef, c.up.coef + c.up.ndirs, 0.f);
        cpu::update_perturb(theta.data_ptr(), td, n, 3, c.up, c.pt);
      }
      EXPECT_TRUE(at::equal(test::bits(theta), test::bits(theta0)));
    }
}

// The same sub-ulp update (theta <- theta (1 - lr wd), coefficients 0) applied K times to N elements
// with independent rounding streams: the mean of the stochastically rounded weights follows the
// float64 trajectory within 6 standard errors (Var <= K ulp^2 / 4 per element), while round-to-
// nearest never moves. Includes fp16 subnormals.
TEST(ZoKernelsCpu, StochasticRoundingIsUnbiased) {
  const int64_t n = 1 << 16;
  const int steps = 100;
  struct Setup {
    DType d;
    double t0;
  };
  for (const Setup& s : {Setup{DType::kBF16, 1.5}, Setup{DType::kF16, 1.5}, Setup{DType::kF16, -3e-6},
                         Setup{DType::kBF16, -0.02}}) {
    SCOPED_TRACE(std::string(dtype_name(s.d)) + " t0 " + std::to_string(s.t0));
    for (bool sr : {true, false}) {
      at::Tensor theta = at::full({n}, s.t0, at::kDouble).to(scalar_type(s.d));
      const double start = theta[0].item<double>();
      UpdateSpec up;
      up.ndirs = 1;
      up.lr = 1e-3f;
      up.wd = 0.1f;  // shrink by 1e-4 per step: well below one ulp
      up.stochastic_round = sr;
      double expect = start;
      for (int k = 0; k < (sr ? steps : 5); ++k) {  // RNE: the state after one step repeats
        up.key = step_key(99, k);
        cpu::update_perturb(theta.data_ptr(), s.d, n, 8, up, PerturbSpec{});
        expect -= double(up.lr) * (double(up.wd) * expect);
      }
      const double mean = theta.to(at::kDouble).mean().item<double>();
      const double ulp = test::grid_step(s.d, at::tensor({start}, at::kDouble)).item<double>();
      if (sr) {
        EXPECT_NEAR(mean, expect, 6 * ulp * std::sqrt(steps / (4.0 * n)));
        EXPECT_GT(std::fabs(start - expect), 20 * ulp * std::sqrt(steps / (4.0 * n))) << "test has no power";
      } else {
        EXPECT_EQ(mean, start) << "round-to-nearest moved a sub-ulp update";
      }
    }
  }
}

// The perturbed rows of an embedding lookup equal the rows update_perturb writes for the whole table.
TEST(ZoKernelsCpu, GatherPerturbEqualsUpdatePerturbRows) {
  at::manual_seed(3);
  const int64_t vocab = 37, dim = 13;  // odd dim: Philox groups straddle rows
  const std::vector<int64_t> rows = {5, 0, 36, 5, 17};
  const int64_t nr = int64_t(rows.size());
  for (DType td : all_dtypes())
    for (DType od : all_dtypes()) {
      SCOPED_TRACE(std::string("table ") + dtype_name(td) + " out " + dtype_name(od));
      const at::Tensor table = random_theta(vocab * dim, td);
      Case c = make_case(od, false);
      at::Tensor full = at::empty({c.pt.nbranch, vocab * dim}, scalar_type(od));
      c.pt.out = full.data_ptr();
      c.pt.out_stride = vocab * dim;
      at::Tensor copy = table.clone();
      cpu::update_perturb(copy.data_ptr(), td, vocab * dim, 4, UpdateSpec{}, c.pt);
      EXPECT_TRUE(at::equal(test::bits(copy), test::bits(table))) << "ndirs = 0 wrote theta";

      at::Tensor got = at::empty({c.pt.nbranch, nr * dim}, scalar_type(od));
      c.pt.out = got.data_ptr();
      c.pt.out_stride = nr * dim;
      cpu::gather_perturb(table.data_ptr(), td, dim, rows.data(), nr, 4, c.pt);
      const at::Tensor idx = at::tensor(rows, at::kLong);
      const at::Tensor want = full.view({c.pt.nbranch, vocab, dim}).index_select(1, idx).reshape({c.pt.nbranch, -1});
      EXPECT_TRUE(at::equal(test::bits(got), test::bits(want)));
    }
}

// Results are pure functions of the element: the same with 1 and 4 threads.
// update_perturb_many: each parameter as its own update_perturb (with or without the update), its
// copies at its offset of the shared buffer, nothing written between them.
TEST(ZoKernelsCpu, UpdatePerturbManyIsOnePassPerParameter) {
  at::manual_seed(6);
  const Case c = make_case(DType::kBF16, true);
  const std::vector<int64_t> sizes = {40, 7, 1000, 4};
  Segments segs;
  std::vector<at::Tensor> thetas, want_theta, want_out;
  int64_t total = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const at::Tensor theta0 = random_theta(sizes[i], DType::kF16);
    thetas.push_back(theta0.clone());
    Segment& s = segs.seg[segs.count++];
    s.theta = thetas.back().data_ptr();
    s.n = sizes[i];
    s.param = uint32_t(40 + i);
    s.out_offset = total + 2;
    s.update = i != 1;
    total = s.out_offset + sizes[i];
    want_theta.push_back(theta0.clone());
    want_out.push_back(at::zeros({c.pt.nbranch, sizes[i]}, at::kBFloat16));
    PerturbSpec pt = c.pt;
    pt.out = want_out.back().data_ptr();
    pt.out_stride = sizes[i];
    cpu::update_perturb(want_theta.back().data_ptr(), DType::kF16, sizes[i], s.param, s.update ? c.up : UpdateSpec{}, pt);
  }
  at::Tensor out = at::full({c.pt.nbranch, total}, 7.0, at::kBFloat16);
  PerturbSpec pt = c.pt;
  pt.out = out.data_ptr();
  pt.out_stride = total;
  cpu::update_perturb_many(segs, DType::kF16, c.up, pt);
  int64_t gap = 0;
  for (int i = 0; i < segs.count; ++i) {
    EXPECT_TRUE(at::equal(thetas[i], want_theta[i])) << "parameter " << i;
    EXPECT_TRUE(at::equal(out.narrow(1, segs.seg[i].out_offset, sizes[i]), want_out[i])) << "copies of " << i;
    EXPECT_TRUE(at::equal(out.narrow(1, gap, 2), at::full({c.pt.nbranch, 2}, 7.0, at::kBFloat16))) << "gap " << i;
    gap = segs.seg[i].out_offset + sizes[i];
  }
}

TEST(ZoKernelsCpu, ResultsDoNotDependOnThreadCount) {
  at::manual_seed(4);
  const int64_t n = 100003;
  const at::Tensor theta0 = random_theta(n, DType::kBF16);
  auto run = [&](int threads) {
    at::set_num_threads(threads);
    at::Tensor theta = theta0.clone();
    Case c = make_case(DType::kF16, true);
    at::Tensor out = at::empty({c.pt.nbranch, n}, at::kHalf);
    c.pt.out = out.data_ptr();
    c.pt.out_stride = n;
    cpu::update_perturb(theta.data_ptr(), DType::kBF16, n, 2, c.up, c.pt);
    return std::make_pair(theta, out);
  };
  const int saved = at::get_num_threads();
  const auto a = run(1), b = run(4);
  at::set_num_threads(saved);
  EXPECT_TRUE(at::equal(test::bits(a.first), test::bits(b.first)));
  EXPECT_TRUE(at::equal(test::bits(a.second), test::bits(b.second)));
}

TEST(ZoKernelsCpu, BadSpecsThrowOneLineErrors) {
  std::vector<float> theta(16), out(64);
  UpdateSpec up;
  PerturbSpec pt;
  up.ndirs = kMaxDirs + 1;
  up.lr = 1.f;
  EXPECT_THROW(cpu::update_perturb(theta.data(), DType::kF32, 16, 0, up, pt), Error);
  up.ndirs = 1;
  pt.nbranch = 2;
  pt.out = out.data();
  pt.out_stride = 8;
  try {
    cpu::update_perturb(theta.data(), DType::kF32, 16, 0, up, pt);
    FAIL() << "overlapping copies accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("PerturbSpec.out_stride"), std::string::npos) << e.what();
  }
  pt.out_stride = 16;
  EXPECT_THROW(cpu::update_perturb(theta.data(), DType(7), 16, 0, up, pt), Error);
  const int64_t rows[] = {1, -2};
  EXPECT_THROW(cpu::gather_perturb(theta.data(), DType::kF32, 4, rows, 2, 0, pt), Error);
  EXPECT_THROW(cpu::normal(nullptr, 4, 0, 0, 0, 0), Error);
}

}  // namespace
}  // namespace zo2::kernels
