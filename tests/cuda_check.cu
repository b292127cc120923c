// Links the CUDA kernels without LibTorch, so a CPU-only CI still catches a broken CUDA build.
// With a device present it also checks GPU z against the host formula (zo_element.h) within 1e-6.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "kernels/zo_element.h"
#include "kernels/zo_kernels.h"

int main() {
  namespace k = zo2::kernels;
  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
    std::printf("zo2_cuda_check: kernels linked; no CUDA device to run them\n");
    return 0;
  }
  const int64_t n = 1 << 20;
  const uint64_t key = k::step_key(1, 0);
  float* z = nullptr;
  cudaMalloc(&z, n * sizeof(float));
  k::cuda::normal(z, n, key, 16, 0, 0, nullptr);
  std::vector<float> got(n);
  cudaError_t e = cudaMemcpy(got.data(), z, n * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(z);
  if (e != cudaSuccess) {
    std::printf("zo2_cuda_check: %s\n", cudaGetErrorString(e));
    return 1;
  }
  double worst = 0;
  for (int64_t g = 0; g < n / 4; ++g) {
    float ref[4];
    k::normals<1>(key, k::subsequence(0, 16), uint64_t(g), ref);
    for (int j = 0; j < 4; ++j) worst = std::fmax(worst, std::fabs(double(got[4 * g + j]) - ref[j]));
  }
  std::printf("zo2_cuda_check: max |z_gpu - z_host| = %.3g over %lld elements\n", worst, (long long)n);
  return worst < 1e-6 ? 0 : 1;
}
