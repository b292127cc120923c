// Greedy generation on a CUDA device: the cached, left-padded batch (SDPA with an explicit mask for the
// decode steps) against the full forward per token and prompt (SDPA is_causal), resident and streamed
// through the offload pipeline. Models: tests/data/parity in fp32. Metric: ids exactly equal; per-step
// logits relative L2 < 1e-4 (fp32 on the GPU: different kernels for the two paths).
#include <gtest/gtest.h>

#include "common/generate_ref.h"
#include "common/test_util.h"
#include "io/checkpoint.h"
#include "zo/zo_model.h"

namespace zo2 {
namespace {

class GenerateGpu : public ::testing::TestWithParam<std::string> {};

TEST_P(GenerateGpu, CachedBatchEqualsFullForwardResident) {
  ZO2_SKIP_WITHOUT_CUDA();
  const Checkpoint ck = load_checkpoint(test::data_path("parity/" + GetParam()), {at::kFloat, at::kCUDA});
  GenerateOptions opt;
  opt.max_new_tokens = 12;
  ResidentModel resident(ck.cfg, ck.weights);
  test::check_generate(resident, ck, opt, 1e-4);
}

TEST_P(GenerateGpu, CachedBatchEqualsFullForwardStreamed) {
  ZO2_SKIP_WITHOUT_CUDA();
  const Checkpoint ck = load_checkpoint(test::data_path("parity/" + GetParam()), {at::kFloat, at::kCUDA});
  GenerateOptions opt;
  opt.max_new_tokens = 12;
  std::unique_ptr<ZoModel> streamed = test::streamed(ck, at::kCUDA);
  test::check_generate(*streamed, ck, opt, 1e-4);
  opt.stop_ids = {test::reference_generate(ck, test::prompts(ck.cfg.vocab_size)[1], 3, {}).tokens.at(2)};
  test::check_generate(*streamed, ck, opt, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Models, GenerateGpu, ::testing::Values("pre_ln", "post_ln_proj", "untied"));

}  // namespace
}  // namespace zo2
