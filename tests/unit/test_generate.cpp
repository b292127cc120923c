// Greedy generation with a KV cache against the reference in tests/common/generate_ref.h: every prompt
// alone (no padding), the whole forward re-run for every new token, argmax of logits_at at the end.
// The forward itself matches transformers (test_parity.cpp). Models: tests/data/parity, fp32 on the CPU.
// Metric: generated ids exactly equal; per-step logits relative L2 < 1e-5 (fp32).
#include <gtest/gtest.h>

#include <algorithm>

#include "common/error.h"
#include "common/generate_ref.h"
#include "common/test_util.h"
#include "io/checkpoint.h"
#include "offload/offload_model.h"
#include "train/generate.h"

namespace zo2 {
namespace {

class Generate : public ::testing::TestWithParam<std::string> {};

TEST_P(Generate, CachedBatchEqualsFullForwardPerToken) {
  const Checkpoint ck = load_checkpoint(test::data_path("parity/" + GetParam()), {at::kFloat, at::kCPU});
  ResidentModel model(ck.cfg, ck.weights);
  GenerateOptions opt;
  opt.max_new_tokens = 12;
  test::check_generate(model, ck, opt);
  // Stop tokens: one the first prompt produces as its third token, so that it stops early.
  const test::Reference free_run = test::reference_generate(ck, test::prompts(ck.cfg.vocab_size)[0], 3, {});
  ASSERT_EQ(free_run.tokens.size(), 3u);
  opt.stop_ids = {free_run.tokens[2], ck.cfg.eos_token_id};
  test::check_generate(model, ck, opt);
  // The length cap: prompt + new tokens <= max_length (the 9-token prompt gets 2).
  opt.max_length = 11;
  test::check_generate(model, ck, opt);
}

TEST_P(Generate, StreamedModelGeneratesTheSame) {
  const Checkpoint ck = load_checkpoint(test::data_path("parity/" + GetParam()), {at::kFloat, at::kCPU});
  std::unique_ptr<ZoModel> model = test::streamed(ck, at::kCPU);
  GenerateOptions opt;
  opt.max_new_tokens = 8;
  test::check_generate(*model, ck, opt);
}

INSTANTIATE_TEST_SUITE_P(Models, Generate, ::testing::Values("pre_ln", "post_ln_proj", "untied"));

TEST(GenerateEdges, PromptsWithoutRoomGetNothing) {
  const Checkpoint ck = load_checkpoint(test::data_path("parity/small"), {at::kFloat, at::kCPU});
  ResidentModel model(ck.cfg, ck.weights);
  GenerateOptions opt;
  opt.max_length = 5;
  const Generated g = generate(model, {{2, 5, 6, 7, 8}, {2, 9}}, opt);
  EXPECT_TRUE(g.tokens[0].empty());
  EXPECT_FALSE(g.stopped[0]);
  EXPECT_EQ(g.tokens[1].size(), 3u);
  EXPECT_THROW(generate(model, std::vector<std::vector<int64_t>>(1), opt), Error);
}

}  // namespace
}  // namespace zo2
