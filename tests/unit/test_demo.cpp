// The README's first command: `zo2 demo` fine-tunes the embedded model and must beat its zero-shot
// accuracy by the margin the README states (25 points) on the 400 held-out examples.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/test_util.h"

namespace zo2 {
namespace {

TEST(Demo, FineTunedBeatsZeroShotByTheReadmeMargin) {
  const std::string metrics = test::temp_dir("demo") + "/metrics.jsonl";
  const std::string cmd = std::string(ZO2_BINARY_DIR) + "/zo2 demo --progress false --metrics " + metrics + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  ASSERT_EQ(pclose(p), 0) << out;
  std::vector<nlohmann::json> evals;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("eval_accuracy")) evals.push_back(j);
  }
  ASSERT_GE(evals.size(), 2u) << out;
  const double zero_shot = evals.front()["eval_accuracy"], tuned = evals.back()["eval_accuracy"];
  EXPECT_EQ(evals.front()["step"], 0);
  EXPECT_EQ(evals.front()["eval_examples"], 400);
  EXPECT_GE(tuned - zero_shot, 0.25) << "zero-shot " << zero_shot << ", fine-tuned " << tuned << "\n" << out;
}

}  // namespace
}  // namespace zo2
