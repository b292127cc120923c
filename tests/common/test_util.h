// Helpers shared by the test binaries: data paths, metrics with explicit tolerances, GPU skips.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace zo2::test {

std::string data_path(const std::string& rel);  // tests/data/<rel>
std::string temp_dir(const std::string& tag);   // fresh directory under the build tree

// Runs the built `zo2 <args>` with stderr joined to stdout: its exit status (-1 if it did not exit) and
// what it printed.
std::pair<int, std::string> run_zo2(const std::string& args);

// ||a - b|| / ||b|| in float64.
double rel_l2(const at::Tensor& a, const at::Tensor& b);
double max_abs(const at::Tensor& a, const at::Tensor& b);

bool cuda_available();

// `fn` throws zo2::Error with a one-line message containing every part.
inline void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning " << parts.at(0);
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "multi-line message: " << m;
    for (const std::string& p : parts) EXPECT_NE(m.find(p), std::string::npos) << "'" << p << "' not in: " << m;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-zo2 exception: " << e.what();
  }
}

}  // namespace zo2::test

#define ZO2_SKIP_WITHOUT_CUDA()                                              \
  do {                                                                       \
    if (!::zo2::test::cuda_available()) GTEST_SKIP() << "no CUDA device";   \
  } while (0)
