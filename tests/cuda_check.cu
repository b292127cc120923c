// Links the CUDA kernels without LibTorch, so a CPU-only CI still catches a broken CUDA build.
// It runs them only when a device is present.
#include <cuda_runtime.h>

#include <cstdio>

#include "kernels/zo_kernels.h"

int main() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    std::printf("zo2_cuda_check: kernels linked; no CUDA device to run them\n");
    return 0;
  }
  float* z = nullptr;
  cudaMalloc(&z, 1024 * sizeof(float));
  zo2::kernels::cuda::normal(z, 1024, zo2::kernels::step_key(1, 0), 16, 0, 0, nullptr);
  cudaError_t e = cudaDeviceSynchronize();
  cudaFree(z);
  std::printf("zo2_cuda_check: %s\n", cudaGetErrorString(e));
  return e == cudaSuccess ? 0 : 1;
}
