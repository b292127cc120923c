#include "common/test_util.h"

#include <torch/cuda.h>

#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <filesystem>

namespace zo2::test {

std::string data_path(const std::string& rel) { return std::string(ZO2_TEST_DATA) + "/" + rel; }

std::string temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  namespace fs = std::filesystem;
  fs::path p = fs::path(ZO2_BINARY_DIR) / "test_tmp" /
               (tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::pair<int, std::string> run_zo2(const std::string& args) {
  const std::string cmd = std::string(ZO2_BINARY_DIR) + "/zo2 " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, "popen failed: " + cmd};
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

double rel_l2(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.to(at::kCPU, at::kDouble), y = b.to(at::kCPU, at::kDouble);
  return (x - y).norm().item<double>() / y.norm().item<double>();
}

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kCPU, at::kDouble) - b.to(at::kCPU, at::kDouble)).abs().max().item<double>();
}

bool cuda_available() { return torch::cuda::is_available(); }

}  // namespace zo2::test
