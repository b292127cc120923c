#include "comm/device.h"

#include "comm/comm_check.h"

#if defined(ZO2_WITH_CUDA) || defined(ZO2_WITH_NCCL)
#include <cuda_runtime.h>
#define ZO2_COMM_HAS_CUDART 1
#endif

namespace zo2 {

int cuda_device_count() {
#ifdef ZO2_COMM_HAS_CUDART
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // "no device" / "no driver" is an answer here, not an error
    return 0;
  }
  return n;
#else
  return 0;
#endif
}

int bind_device(int local_rank) {
  const int n = cuda_device_count();
  if (n == 0) return -1;
  const int device = local_rank % n;
#ifdef ZO2_COMM_HAS_CUDART
  CUDA_CHECK(cudaSetDevice(device));
#endif
  return device;
}

}  // namespace zo2
