// Helpers shared by the checkpoint I/O tests: raw file bytes, scratch copies of test checkpoints,
// and checks that a call fails with a zo2::Error whose one line names what is at fault.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <vector>
#include <iterator>
#include <map>
#include <string>

#include "common/error.h"
#include "common/test_util.h"
#include "model/opt_weights.h"

namespace zo2::test {

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// A fresh scratch copy of tests/data/<rel> (a checkpoint directory).
inline std::string copy_data_dir(const std::string& rel, const std::string& tag) {
  const std::string dir = temp_dir(tag);
  std::filesystem::copy(data_path(rel), dir, std::filesystem::copy_options::recursive);
  return dir;
}

inline std::map<std::string, at::Tensor> by_name(const OptConfig& cfg, OptWeights& w) {
  std::map<std::string, at::Tensor> m;
  for_each_param(cfg, w, [&](const ParamInfo& p, at::Tensor& t) { m[p.name] = t; });
  return m;
}

}  // namespace zo2::test
