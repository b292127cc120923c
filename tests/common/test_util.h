// Helpers shared by the test binaries: data paths, metrics with explicit tolerances, GPU skips.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

namespace zo2::test {

std::string data_path(const std::string& rel);  // tests/data/<rel>
std::string temp_dir(const std::string& tag);   // fresh directory under the build tree

// ||a - b|| / ||b|| in float64.
double rel_l2(const at::Tensor& a, const at::Tensor& b);
double max_abs(const at::Tensor& a, const at::Tensor& b);

bool cuda_available();

}  // namespace zo2::test

#define ZO2_SKIP_WITHOUT_CUDA()                                              \
  do {                                                                       \
    if (!::zo2::test::cuda_available()) GTEST_SKIP() << "no CUDA device";   \
  } while (0)
