// The LM head's log p(target) on the GPU (one fused kernel per logits chunk, kernels/target_logprobs.cu,
// reached through model/opt_forward's target_logprobs) against fp64 log_softmax on the CPU from the
// same rounded hidden states and head. Several branches (each its own head copy), several chunks, the
// vectorised and the element-wise path (vocab not a multiple of 8). Metric: |got - ref| <= 2 * rel *
// max |logit| of the row + 1e-4, rel = one ulp of the logits' dtype (they are rounded to it before the
// kernel reads them; fp32: 1e-6).
#include <gtest/gtest.h>

#include <cmath>

#include "common/test_util.h"
#include "model/opt_forward.h"
#include "model/param_source.h"

namespace zo2 {
namespace {

// nb branches whose head is w * (1 + 0.1 b): enough to tell the branches apart.
class ScaledBranches final : public ParamSource {
 public:
  ScaledBranches(int64_t nb, at::ScalarType dtype) : nb_(nb), dtype_(dtype) {}
  int64_t branches() const override { return nb_; }
  at::Tensor vec(int64_t, const at::Tensor&) override { throw std::logic_error("not used"); }
  at::Tensor rows(int64_t, const at::Tensor&, const at::Tensor&) override { throw std::logic_error("not used"); }
  void mat(int64_t, const at::Tensor& w, const MatrixFn& fn) override { fn(0, copies(w)); }
  at::Tensor copies(const at::Tensor& w) const {
    std::vector<at::Tensor> c;
    for (int64_t b = 0; b < nb_; ++b) c.push_back((w.to(at::kDouble) * (1.0 + 0.1 * b)).to(dtype_));
    return at::stack(c);
  }

 private:
  int64_t nb_;
  at::ScalarType dtype_;
};

double rel_of(at::ScalarType t) {
  if (t == at::kHalf) return std::ldexp(1.0, -10);
  if (t == at::kBFloat16) return std::ldexp(1.0, -7);
  return 1e-6;
}

void check(at::ScalarType dt, int64_t vocab, int64_t nb, int64_t chunk) {
  at::manual_seed(vocab + nb + chunk);
  const int64_t B = 2, T = 9, E = 64;
  OptConfig cfg;
  cfg.vocab_size = vocab;
  const at::TensorOptions gpu = at::TensorOptions().dtype(dt).device(at::kCUDA);
  OuterWeights w;
  w.embed_tokens = (at::randn({vocab, E}, at::kDouble) * 0.3).to(gpu);  // tied head
  const at::Tensor hidden = (at::randn({nb, B, T, E}, at::kDouble) * 2.0).to(gpu);
  at::Tensor labels = at::randint(0, vocab, {B, T}, at::kLong);
  labels[0][3] = -100;  // ignored
  const TokenTargets tt_cpu = causal_lm_targets(labels);
  TokenTargets tt = tt_cpu;
  tt.rows = tt_cpu.rows.cuda();
  tt.targets = tt_cpu.targets.cuda();
  tt.seq = tt_cpu.seq.cuda();
  ScaledBranches src(nb, dt);
  const at::Tensor got = target_logprobs(cfg, w, src, hidden, tt, chunk).cpu().to(at::kDouble);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{nb, tt_cpu.rows.numel()}));

  // Reference: the logits the GPU rounded to dt, then fp64 log-softmax.
  const at::Tensor heads = src.copies(w.embed_tokens).cpu().to(at::kDouble);  // [nb, V, E]
  const at::Tensor h = hidden.cpu().to(at::kDouble).reshape({nb, B * T, E}).index_select(1, tt_cpu.rows);
  const at::Tensor logits = at::bmm(h, heads.transpose(1, 2)).to(dt).to(at::kDouble);  // [nb, N, V]
  const at::Tensor ref =
      at::log_softmax(logits, 2).gather(2, tt_cpu.targets.view({1, -1, 1}).expand({nb, -1, 1})).squeeze(2);
  const at::Tensor bound = 2 * rel_of(dt) * std::get<0>(logits.abs().max(2)) + 1e-4;
  EXPECT_TRUE(((got - ref).abs() <= bound).all().item<bool>())
      << dt << " vocab " << vocab << " nb " << nb << " chunk " << chunk << ": max |got - ref| "
      << (got - ref).abs().max().item<double>() << ", bound " << bound.min().item<double>();
}

TEST(TargetLogprobsGpu, MatchFp64LogSoftmaxPerBranchAndChunk) {
  ZO2_SKIP_WITHOUT_CUDA();
  for (at::ScalarType dt : {at::kFloat, at::kHalf, at::kBFloat16})
    for (int64_t vocab : {50272, 37})
      for (int64_t nb : {1, 2})
        for (int64_t chunk : {0, 5}) check(dt, vocab, nb, chunk);
}

// A target id outside the vocabulary gives NaN (the step is then skipped and counted), not a read
// outside the row.
TEST(TargetLogprobsGpu, TargetOutsideTheVocabularyIsNaN) {
  ZO2_SKIP_WITHOUT_CUDA();
  OptConfig cfg;
  cfg.vocab_size = 16;
  OuterWeights w;
  w.embed_tokens = at::randn({16, 8}, at::TensorOptions().device(at::kCUDA));
  TokenTargets tt;
  tt.rows = at::arange(3, at::TensorOptions().dtype(at::kLong).device(at::kCUDA));
  tt.targets = at::tensor({int64_t(2), int64_t(16), int64_t(-1)}, at::kLong).cuda();
  tt.seq = at::zeros({3}, tt.rows.options());
  tt.batch = 1;
  ScaledBranches src(1, at::kFloat);
  const at::Tensor got = target_logprobs(cfg, w, src, at::randn({1, 1, 3, 8}, at::kCUDA), tt, 0).cpu();
  EXPECT_TRUE(std::isfinite(got[0][0].item<float>()));
  EXPECT_TRUE(std::isnan(got[0][1].item<float>()));
  EXPECT_TRUE(std::isnan(got[0][2].item<float>()));
}

}  // namespace
}  // namespace zo2
