// Every file layout of tests/data/parity/variants (written by transformers/torch from the `small` model,
// scripts/ref/make_parity.py) loads to the same model as tests/data/parity/small.
// Metrics: tensors bitwise equal to small's fp32 tensors rounded to the variant's stored dtype (rounding
// by ATen, independent of the loader); logits rel L2 <= 1e-5 against our fp32 forward of `small` for fp32
// variants, and <= 1e-2 against transformers' fp32 reference logits for fp16/bf16 variants (weights
// converted to fp32 for compute).
#include <gtest/gtest.h>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "model/opt_forward.h"
#include "test_io_util.h"

namespace zo2 {
namespace {

struct Variant {
  const char* name;
  at::ScalarType stored;
};
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

at::Tensor logits_of(const Checkpoint& ck, const std::string& ref_dir) {
  SafetensorsFile ref(ref_dir + "/reference.safetensors");
  const at::Tensor ids = ref.tensor("input_ids").clone(), mask = ref.tensor("attention_mask").clone();
  PlainParams src(at::kFloat);
  AttnMask m = make_attn_mask(mask);
  at::Tensor h = decoder_forward(ck.cfg, ck.weights, src, ids, m, nullptr);
  return logits_at(ck.cfg, ck.weights.outer, src, h, at::arange(ids.numel(), at::kLong))[0].view(
      {ids.size(0), ids.size(1), -1});
}

class Variants : public ::testing::TestWithParam<Variant> {};

TEST_P(Variants, TensorsEqualTheBaseModelRoundedToTheStoredDtype) {
  Checkpoint base = load_checkpoint(test::data_path("parity/small"));
  Checkpoint v = load_checkpoint(test::data_path(std::string("parity/variants/") + GetParam().name));
  auto want = test::by_name(base.cfg, base.weights);
  auto got = test::by_name(v.cfg, v.weights);
  ASSERT_EQ(got.size(), want.size());
  for (auto& [name, t] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    EXPECT_EQ(got[name].scalar_type(), at::kFloat);
    EXPECT_TRUE(at::equal(got[name], t.to(GetParam().stored).to(at::kFloat))) << name;
  }
}

TEST_P(Variants, LogitsMatch) {
  const std::string ref_dir = test::data_path("parity/small");
  Checkpoint base = load_checkpoint(ref_dir);
  Checkpoint v = load_checkpoint(test::data_path(std::string("parity/variants/") + GetParam().name));
  const at::Tensor logits = logits_of(v, ref_dir);
  if (GetParam().stored == at::kFloat) {
    EXPECT_LT(test::rel_l2(logits, logits_of(base, ref_dir)), 1e-5);
  } else {
    const at::Tensor ref = SafetensorsFile(ref_dir + "/reference.safetensors").tensor("logits");
    const double err = test::rel_l2(logits, ref);
    EXPECT_LT(err, 1e-2);
    EXPECT_GT(err, 0.0);  // the rounding is really there: the variant is not the fp32 file
  }
}

TEST_P(Variants, VisitorSeesEachParameterOnceInItsStoredDtype) {
  const std::string dir = test::data_path(std::string("parity/variants/") + GetParam().name);
  const OptConfig cfg = load_hf_config(dir + "/config.json");
  std::map<int64_t, int> calls;
  read_checkpoint_tensors(dir, cfg, [&](const ParamInfo& p, const at::Tensor& t) {
    ++calls[p.id];
    EXPECT_EQ(t.scalar_type(), GetParam().stored) << p.name;
    EXPECT_EQ(t.device(), at::kCPU);
    EXPECT_EQ(t.sizes().vec(), p.shape) << p.name;
  });
  const auto table = param_table(cfg);
  ASSERT_EQ(calls.size(), table.size());
  for (const ParamInfo& p : table) EXPECT_EQ(calls[p.id], 1) << p.name;
}

INSTANTIATE_TEST_SUITE_P(Layouts, Variants,
                         ::testing::Values(Variant{"sharded", at::kFloat}, Variant{"decoder_prefix_fp16", at::kHalf},
                                           Variant{"bf16", at::kBFloat16}, Variant{"bin_dict", at::kFloat},
                                           Variant{"bin_ordered", at::kHalf}, Variant{"bin_sharded", at::kHalf}),
                         [](const auto& info) { return std::string(info.param.name); });

// Loading converts to the requested dtype exactly as ATen rounds (any stored dtype -> any compute dtype).
TEST(LoadCheckpoint, ConvertsToTheRequestedDtype) {
  Checkpoint f32 = load_checkpoint(test::data_path("parity/small"));
  for (at::ScalarType t : {at::kHalf, at::kBFloat16}) {
    Checkpoint low = load_checkpoint(test::data_path("parity/small"), {t, at::kCPU});
    auto want = test::by_name(f32.cfg, f32.weights);
    for (auto& [name, x] : test::by_name(low.cfg, low.weights)) {
      EXPECT_EQ(x.scalar_type(), t);
      EXPECT_TRUE(x.is_contiguous());
      EXPECT_TRUE(at::equal(x, want[name].to(t))) << name;
    }
  }
}

TEST(LoadCheckpoint, SafetensorsViewsAreZeroCopy) {
  // The offload store copies straight from the mapping: views point into the file, not into a copy.
  const std::string dir = test::data_path("parity/small");
  const OptConfig cfg = load_hf_config(dir + "/config.json");
  SafetensorsFile f(dir + "/model.safetensors");
  const at::Tensor embed = f.tensor("model.decoder.embed_tokens.weight");
  int seen = 0;
  read_checkpoint_tensors(dir, cfg, [&](const ParamInfo& p, const at::Tensor& t) {
    if (p.id != kEmbedTokens) return;
    ++seen;
    EXPECT_TRUE(at::equal(t, embed));
    EXPECT_FALSE(t.storage().resizable());  // wraps the mapping; ATen-allocated storage is resizable
  });
  EXPECT_EQ(seen, 1);
}

}  // namespace
}  // namespace zo2
