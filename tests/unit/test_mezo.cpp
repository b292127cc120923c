// The MeZO estimator and step against autograd on a tiny OPT.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/test_util.h"
#include "data/example.h"
#include "kernels/zo_kernels.h"
#include "model/loss.h"
#include "zo/init.h"
#include "zo/mezo.h"
#include "zo/zo_model.h"

namespace zo2 {
namespace {

OptConfig tiny_config() {
  OptConfig c;
  c.name = "tiny";
  c.vocab_size = 40;
  c.hidden = 16;
  c.layers = 2;
  c.heads = 2;
  c.ffn = 32;
  c.max_positions = 32;
  c.word_embed_dim = 16;
  return c;
}

// Random weights with non-trivial biases and LayerNorms, in `dtype`.
OptWeights tiny_weights(const OptConfig& c, at::ScalarType dtype, uint64_t seed) {
  OptWeights w = random_weights(c, at::kDouble, at::kCPU, seed);
  at::Generator g = at::detail::createCPUGenerator(seed + 1);
  for_each_param(c, w, [&](const ParamInfo&, at::Tensor& t) {
    t = (t + 0.1 * at::normal(0.0, 1.0, t.sizes(), g, at::TensorOptions().dtype(at::kDouble))).to(dtype);
  });
  return w;
}

Batch tiny_batch(const OptConfig& c, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  std::vector<Example> ex(3);
  for (int i = 0; i < 3; ++i) {
    at::Tensor ids = at::randint(3, c.vocab_size, {8 + 2 * i}, g, at::TensorOptions().dtype(at::kLong));
    ex[i].candidates.push_back({std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel()), 1});
  }
  std::vector<const Example*> p = {&ex[0], &ex[1], &ex[2]};
  BatchOptions bo;
  bo.pad_multiple = 1;
  return make_batch(p, bo);
}

// Loss of the model whose every parameter is w + s * z(key, dir 0), all in float64.
double loss_along(const OptConfig& c, const OptWeights& w, const Batch& b, uint64_t key, double s) {
  OptWeights p = w;
  for_each_param(c, p, [&](const ParamInfo& info, at::Tensor& t) {
    t = t + s * direction_z(key, 0, info.id, t).to(at::kDouble);
  });
  ResidentModel m(c, p);
  PlainParams plain(at::kDouble);
  return m.branch_losses(plain, b).item<double>();
}

// z^T grad L by autograd, float64.
double directional_derivative(const OptConfig& c, const OptWeights& w, const Batch& b, uint64_t key) {
  OptWeights p = w;
  std::vector<std::pair<int64_t, at::Tensor>> leaves;
  for_each_param(c, p, [&](const ParamInfo& info, at::Tensor& t) {
    t = t.detach().clone().requires_grad_(true);
    leaves.emplace_back(info.id, t);
  });
  ResidentModel m(c, p);
  PlainParams plain(at::kDouble);
  m.branch_losses(plain, b).sum().backward();
  double d = 0;
  for (auto& [id, t] : leaves) d += (t.grad() * direction_z(key, 0, id, t).to(at::kDouble)).sum().item<double>();
  return d;
}

// SPSA's error is (eps^2 / 6) D^3L[z,z,z] + O(eps^4): halving eps must quarter it. That holds where
// L is smooth, so the fc1 biases are lifted far above the ReLU kinks (a kink crossed by the +-eps
// perturbation would add an O(eps) error that says nothing about the estimator).
TEST(Mezo, SpsaEqualsAutogradDirectionalDerivativeToSecondOrder) {
  const OptConfig c = tiny_config();
  OptWeights w = tiny_weights(c, at::kDouble, 7);
  for (BlockWeights& b : w.blocks) {
    b.fc1_b = b.fc1_b + 4.0;
    b.fc1_w = b.fc1_w * 0.5;
  }
  const Batch b = tiny_batch(c, 8);
  for (uint64_t seed : {1u, 2u, 3u}) {
    const uint64_t key = kernels::step_key(seed, 0);
    const double exact = directional_derivative(c, w, b, key);
    double err[3];
    const double eps[3] = {1e-3, 5e-4, 2.5e-4};
    for (int i = 0; i < 3; ++i) {
      const double g = (loss_along(c, w, b, key, eps[i]) - loss_along(c, w, b, key, -eps[i])) / (2 * eps[i]);
      err[i] = g - exact;
    }
    EXPECT_NEAR(err[0] / err[1], 4.0, 0.2) << "seed " << seed << " errors " << err[0] << " " << err[1];
    EXPECT_NEAR(err[1] / err[2], 4.0, 0.2) << "seed " << seed << " errors " << err[1] << " " << err[2];
    EXPECT_LT(std::abs(err[2]), 1e-3 * std::abs(exact) + 1e-9) << "seed " << seed;
  }
}

// The engine's projected gradient (fp32 weights, fused kernels) is the same SPSA number.
TEST(Mezo, EngineProjectedGradientMatchesFloat64Spsa) {
  const OptConfig c = tiny_config();
  const OptWeights w64 = tiny_weights(c, at::kDouble, 11);
  const Batch b = tiny_batch(c, 12);
  OptWeights w32 = w64;
  for_each_param(c, w32, [](const ParamInfo&, at::Tensor& t) { t = t.to(at::kFloat); });
  ResidentModel model(c, w32);
  SingleProcess comm;
  MezoOptions mo;
  mo.seed = 5;
  mo.eps = 1e-2f;
  MezoEngine engine(model, comm, mo, at::kFloat);
  StepStats st = engine.step(0, {b}, /*lr=*/0.0);
  const uint64_t key = kernels::step_key(5, 0);
  const double g64 = (loss_along(c, w64, b, key, 1e-2) - loss_along(c, w64, b, key, -1e-2)) / 2e-2;
  ASSERT_EQ(st.grads.size(), 1u);
  // fp32 forward: losses carry ~1e-6 relative error, divided by 2 eps.
  EXPECT_NEAR(st.grads[0], g64, 1e-6 * std::abs(st.loss) / 2e-2 * 20);
}

// Over many seeds the update moves against the gradient: under a direction uncorrelated with the
// gradient the sign would be a fair coin, and 190 of 200 heads has probability < 1e-40.
TEST(Mezo, UpdateCorrelatesWithNegativeGradient) {
  const OptConfig c = tiny_config();
  const Batch b = tiny_batch(c, 21);
  int positive = 0;
  const int trials = 200;
  for (int s = 0; s < trials; ++s) {
    OptWeights w = tiny_weights(c, at::kFloat, 100 + s);
    // gradient at the starting point (fp64 copy of the fp32 weights)
    OptWeights g = w;
    std::vector<std::pair<int64_t, at::Tensor>> leaves;
    for_each_param(c, g, [&](const ParamInfo& info, at::Tensor& t) {
      t = t.to(at::kDouble).requires_grad_(true);
      leaves.emplace_back(info.id, t);
    });
    {
      ResidentModel gm(c, g);
      PlainParams plain(at::kDouble);
      gm.branch_losses(plain, b).sum().backward();
    }
    OptWeights before = w;
    for_each_param(c, before, [](const ParamInfo&, at::Tensor& t) { t = t.clone(); });
    ResidentModel model(c, w);
    SingleProcess comm;
    MezoOptions mo;
    mo.seed = 1000 + s;
    MezoEngine engine(model, comm, mo, at::kFloat);
    engine.step(0, {b}, /*lr=*/1e-3);
    engine.flush();
    double dot = 0;
    size_t i = 0;
    for_each_param(c, model.weights(), [&](const ParamInfo& info, at::Tensor& t) {
      at::Tensor old = info.layer < 0 ? before.outer.slot(info.slot) : before.blocks[info.layer].slot(info.slot);
      dot += ((t.to(at::kDouble) - old.to(at::kDouble)) * -leaves[i++].second.grad()).sum().item<double>();
    });
    positive += dot > 0;
  }
  EXPECT_GE(positive, 190) << positive << " of " << trials << " updates had a descent component";
}

// lr = 0: any number of steps leaves the stored weights bitwise unchanged, in every dtype.
TEST(Mezo, ZeroLearningRateLeavesWeightsBitwiseUnchanged) {
  const OptConfig c = tiny_config();
  const Batch b = tiny_batch(c, 31);
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16, at::kHalf}) {
    OptWeights w = tiny_weights(c, dt, 32);
    OptWeights copy = w;
    for_each_param(c, copy, [](const ParamInfo&, at::Tensor& t) { t = t.clone(); });
    ResidentModel model(c, w);
    SingleProcess comm;
    MezoOptions mo;
    mo.seed = 3;
    mo.weight_decay = 0.1f;
    MezoEngine engine(model, comm, mo, at::kFloat);
    for (int s = 0; s < 5; ++s) engine.step(s, {b}, 0.0);
    engine.flush();
    for_each_param(c, model.weights(), [&](const ParamInfo& info, at::Tensor& t) {
      at::Tensor old = info.layer < 0 ? copy.outer.slot(info.slot) : copy.blocks[info.layer].slot(info.slot);
      EXPECT_TRUE(at::equal(t, old)) << info.name << " changed (dtype " << dt << ")";
    });
  }
}


// A toy task: fit one fixed batch. The loss falls by a stated margin within a step budget, and q = 4
// directions per step (averaged) reach it in fewer steps than q = 1 at the same learning rate: the
// step direction is less noisy. Medians over seeds, so one lucky draw does not decide.
int64_t steps_to_fall(const OptConfig& c, const Batch& b, int64_t q, uint64_t seed, double lr, double fraction,
                      int64_t budget, double* first_loss) {
  ResidentModel model(c, tiny_weights(c, at::kFloat, 40));
  SingleProcess comm;
  MezoOptions mo;
  mo.seed = seed;
  mo.q = q;
  mo.eps = 1e-3f;
  MezoEngine engine(model, comm, mo, at::kFloat);
  double first = 0;
  for (int64_t s = 0; s < budget; ++s) {
    const double loss = engine.step(s, {b}, lr).loss;
    if (s == 0) first = loss;
    if (loss <= (1 - fraction) * first) {
      *first_loss = first;
      return s;
    }
  }
  *first_loss = first;
  return budget;
}

TEST(Mezo, ToyTaskLossFallsAndMoreDirectionsNeedFewerSteps) {
  const OptConfig c = tiny_config();
  const Batch b = tiny_batch(c, 41);
  const double lr = 1e-2, fraction = 0.2;  // the loss falls by 20 %
  const int64_t budget = 400;
  std::vector<int64_t> steps[2];
  for (uint64_t seed = 0; seed < 5; ++seed) {
    for (int k = 0; k < 2; ++k) {
      double first = 0;
      steps[k].push_back(steps_to_fall(c, b, k == 0 ? 1 : 4, 50 + seed, lr, fraction, budget, &first));
      EXPECT_GT(first, 1.0) << "the toy task starts too easy";
    }
  }
  for (auto& v : steps) std::sort(v.begin(), v.end());
  const int64_t q1 = steps[0][2], q4 = steps[1][2];
  std::printf("steps to a 20%% lower loss (median of 5 seeds): q=1 %lld, q=4 %lld\n", static_cast<long long>(q1),
              static_cast<long long>(q4));
  EXPECT_LT(q1, budget) << "q = 1: the loss did not fall by 20% within " << budget << " steps";
  EXPECT_LT(q4, q1) << "q = 4 should need fewer steps than q = 1";
}

}  // namespace
}  // namespace zo2
