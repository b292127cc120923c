// Helpers shared by the test binaries: data paths, metrics with explicit tolerances, GPU skips.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"

namespace zo2::test {

std::string data_path(const std::string& rel);  // tests/data/<rel>
std::string temp_dir(const std::string& tag);   // fresh directory under the build tree

// ||a - b|| / ||b|| in float64.
double rel_l2(const at::Tensor& a, const at::Tensor& b);
double max_abs(const at::Tensor& a, const at::Tensor& b);

bool cuda_available();

// `f` throws zo2::Error with a one-line message that contains `needle`.
template <class F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no zo2::Error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

}  // namespace zo2::test

#define ZO2_SKIP_WITHOUT_CUDA()                                              \
  do {                                                                       \
    if (!::zo2::test::cuda_available()) GTEST_SKIP() << "no CUDA device";   \
  } while (0)
