// MeZO's SQuAD F1 (mezo: large_models/metrics.py). Normalisation is checked against Python's own
// (tests/data/tasks/reference.json, scripts/ref/make_task_ref.py); F1 values are worked out by hand
// in the comments. Tolerance 1e-12 (a few float64 operations).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/test_util.h"
#include "train/squad_f1.h"

namespace zo2 {
namespace {

TEST(F1, NormalisationMatchesPython) {
  std::ifstream in(test::data_path("tasks/reference.json"));
  const nlohmann::json ref = nlohmann::json::parse(in);
  ASSERT_FALSE(ref["normalize"].empty());
  for (const auto& r : ref["normalize"])
    EXPECT_EQ(normalize_answer(r["s"].get<std::string>()), r["normalized"].get<std::string>()) << r["s"].dump();
}

TEST(F1, HandCheckedCases) {
  const double tol = 1e-12;
  EXPECT_NEAR(squad_f1("The Eiffel Tower!", {"eiffel tower"}), 1.0, tol);
  // pred {in, paris, france}, gold {paris}: P = 1/3, R = 1, F1 = 2PR/(P+R) = 0.5
  EXPECT_NEAR(squad_f1("in Paris, France", {"Paris"}), 0.5, tol);
  // the best of the gold answers
  EXPECT_NEAR(squad_f1("Denver Broncos", {"Broncos", "the Denver Broncos"}), 1.0, tol);
  // pred {broncos}: vs {denver, broncos} P = 1, R = 1/2 -> 2/3
  EXPECT_NEAR(squad_f1("broncos", {"Denver Broncos"}), 2.0 / 3.0, tol);
  // repeated words count once per gold occurrence: pred {cat, cat}, gold {cat}: same 1, P = 1/2, R = 1 -> 2/3
  EXPECT_NEAR(squad_f1("a cat, the cat", {"cat"}), 2.0 / 3.0, tol);
  // pred {1, 2, 3, 4}, gold {3, 4, 5}: same 2, P = 1/2, R = 2/3 -> 4/7
  EXPECT_NEAR(squad_f1("1 2 3 4", {"3 4 5"}), 4.0 / 7.0, tol);
  EXPECT_EQ(squad_f1("", {"x"}), 0.0);
  EXPECT_EQ(squad_f1("the", {"a"}), 0.0);  // both normalise to nothing: MeZO scores 0
  EXPECT_EQ(squad_f1("Berlin", {"Paris", "Rome"}), 0.0);
  // "CANNOTANSWER" / "no answer" as the first gold: exact match after normalisation
  EXPECT_EQ(squad_f1("No answer.", {"no answer"}), 1.0);
  EXPECT_EQ(squad_f1("no answer here", {"no answer"}), 0.0);
  EXPECT_EQ(squad_f1("cannotanswer", {"CANNOTANSWER", "x"}), 1.0);
  EXPECT_EQ(squad_f1("answer", {"no answer", "answer"}), 0.0);
  EXPECT_THROW(squad_f1("x", {}), Error);
}

}  // namespace
}  // namespace zo2
