// Training options out of range are refused with the option and the value, by the library and by
// `zo2 train`, `bench` and `plan` before any model is built (a NaN learning rate used to train, skipping
// steps; `bench --steps -1` crashed).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <limits>

#include "common/test_util.h"
#include "train/trainer.h"
#include "zo/mezo.h"

namespace zo2 {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Each case changes one field of default options; `check` must then throw naming every part.
template <class Options>
struct Case {
  std::function<void(Options&)> set;
  std::vector<std::string> parts;
};
template <class Options>
void expect_each_refused(void (*check)(const Options&), const std::vector<Case<Options>>& cases) {
  for (const Case<Options>& c : cases) {
    Options o;
    c.set(o);
    test::expect_error([&] { check(o); }, c.parts);
  }
}

TEST(TrainOptions, OutOfRangeValuesAreRefused) {
  EXPECT_NO_THROW(check_train_options(TrainOptions{}));
  TrainOptions zero;
  zero.steps = 0;  // evaluation only
  zero.lr.base = 0;
  EXPECT_NO_THROW(check_train_options(zero));

  expect_each_refused<TrainOptions>(check_train_options, {
      {[](TrainOptions& o) { o.steps = -3; }, {"steps", "-3"}},
      {[](TrainOptions& o) { o.batch_size = 0; }, {"batch size", "0"}},
      {[](TrainOptions& o) { o.micro_batches = -1; }, {"micro-batches", "-1"}},
      {[](TrainOptions& o) { o.eval_batch_size = 0; }, {"evaluation batch size", "0"}},
      {[](TrainOptions& o) { o.eval_every = -1; }, {"evaluation and checksum intervals", "-1"}},
      {[](TrainOptions& o) { o.checksum_every = -5; }, {"checksum", "-5"}},
      {[](TrainOptions& o) { o.lr.base = kNaN; }, {"learning rate", "nan"}},
      {[](TrainOptions& o) { o.lr.base = kInf; }, {"learning rate", "inf"}},
      {[](TrainOptions& o) { o.lr.base = -1e-6; }, {"learning rate", "-1e-06"}},
      {[](TrainOptions& o) { o.lr.warmup = -4; }, {"warmup", "-4"}},
  });
}

TEST(MezoOptions, OutOfRangeValuesAreRefused) {
  EXPECT_NO_THROW(check_mezo_options(MezoOptions{}));
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  expect_each_refused<MezoOptions>(check_mezo_options, {
      {[](MezoOptions& o) { o.q = 0; }, {"q (directions per step)", "0"}},
      {[](MezoOptions& o) { o.eps = 0; }, {"eps", "0"}},
      {[&](MezoOptions& o) { o.eps = inf; }, {"eps", "inf"}},
      {[&](MezoOptions& o) { o.eps = nan; }, {"eps", "nan"}},
      {[&](MezoOptions& o) { o.weight_decay = inf; }, {"weight decay", "inf"}},
      {[](MezoOptions& o) { o.weight_decay = -0.1f; }, {"weight decay", "-0.1"}},
      {[](MezoOptions& o) { o.perturbation_groups = 0; }, {"perturbation-parallel groups", "0"}},
      {[](MezoOptions& o) { o.q = 100000; }, {"q x perturbation groups", "100000"}},
  });
}

// One line "zo2: error: ..." naming the value, exit status 1, and nothing before it: the run stopped
// before it built a model or printed its settings.
void expect_cli_error(const std::string& args, const std::vector<std::string>& parts) {
  const auto [rc, out] = test::run_zo2(args);
  EXPECT_EQ(rc, 1) << args << "\n" << out;
  EXPECT_EQ(out.rfind("zo2: error: ", 0), 0u) << args << "\n" << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << args << "\n" << out;
  for (const std::string& p : parts) EXPECT_NE(out.find(p), std::string::npos) << "'" << p << "' not in: " << out;
}

TEST(TrainOptions, CommandLineRefusesThemBeforeTheModel) {
  const std::string data = test::temp_dir("train_options") + "/ids.jsonl";
  std::ofstream(data) << "{\"input_ids\": [1, 2, 3, 4]}\n{\"input_ids\": [5, 6, 7]}\n";
  const std::string train = "train --preset opt-tiny --device cpu --progress false --data " + data + " ";
  const auto [rc, out] = test::run_zo2(train + "--steps 2");
  ASSERT_EQ(rc, 0) << out;  // the same run with valid options trains

  expect_cli_error(train + "--lr nan", {"learning rate", "nan"});
  expect_cli_error(train + "--lr -1", {"learning rate", "-1"});
  expect_cli_error(train + "--steps -3", {"steps", "-3"});
  expect_cli_error(train + "--warmup -4", {"warmup", "-4"});
  expect_cli_error(train + "--eval-batch-size 0", {"evaluation batch size", "0"});
  expect_cli_error(train + "--eps inf", {"eps", "inf"});
  expect_cli_error(train + "--weight-decay nan", {"weight decay", "nan"});
  expect_cli_error(train + "--q 100000", {"q x perturbation groups", "100000"});
  expect_cli_error(train + "--gpu-memory-budget -5", {"--gpu-memory-budget", "-5"});
  expect_cli_error("plan --model opt-1.3b --gpu-memory-budget -1", {"--gpu-memory-budget", "-1"});
  expect_cli_error("plan --model opt-1.3b --batch 0", {"batch", "got 0"});
  expect_cli_error("plan --model opt-1.3b --seq -5", {"sequence length", "-5"});
  expect_cli_error("bench --preset opt-tiny --device cpu --steps -1", {"--steps", "-1"});
  expect_cli_error("bench --preset opt-tiny --device cpu --warmup -2", {"--warmup", "-2"});
  expect_cli_error("eval --preset opt-tiny --device cpu --data " + data + " --batch-size 0", {"--batch-size", "0"});
}

}  // namespace
}  // namespace zo2
