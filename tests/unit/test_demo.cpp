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
  const auto [rc, out] = test::run_zo2("demo --progress false --metrics " + metrics);
  ASSERT_EQ(rc, 0) << out;
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
