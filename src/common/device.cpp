#include "common/device.h"

#include <sys/resource.h>

#ifdef ZO2_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "common/error.h"

namespace zo2 {

void* current_stream(const at::Device& device) {
#ifdef ZO2_WITH_CUDA
  if (device.is_cuda()) return at::cuda::getCurrentCUDAStream(device.index()).stream();
#endif
  return nullptr;
}

void synchronize(const at::Device& device) {
#ifdef ZO2_WITH_CUDA
  if (device.is_cuda()) at::cuda::getCurrentCUDAStream(device.index()).synchronize();
#endif
  (void)device;
}

int64_t peak_memory_bytes(const at::Device& device) {
#ifdef ZO2_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return stats.allocated_bytes[0].peak;  // [0] = StatType::AGGREGATE (the enum moved between versions)
  }
#endif
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

void reset_peak_memory(const at::Device& device) {
#ifdef ZO2_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#endif
  (void)device;
}

at::Device parse_device(const std::string& name) {
  if (name == "auto") return at::hasCUDA() ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  try {
    at::Device d(name);
    ZO2_REQUIRE(d.is_cpu() || d.is_cuda(), "device '", name, "' is neither cpu nor cuda");
    ZO2_REQUIRE(d.is_cpu() || at::hasCUDA(), "device '", name, "' asked for, but this zo2 has no CUDA device");
    return d;
  } catch (const c10::Error&) {
    throw_error("invalid device '", name, "' (use cpu, cuda or cuda:N)");
  }
}

}  // namespace zo2
