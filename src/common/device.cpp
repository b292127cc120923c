#include "common/device.h"

#include <sys/resource.h>

#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#ifdef ZO2_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime.h>
#endif

#include "common/error.h"

namespace zo2 {

void* current_stream(const at::Device& device) {
#ifdef ZO2_WITH_CUDA
  if (device.is_cuda()) return at::cuda::getCurrentCUDAStream(device.index()).stream();
#endif
  return nullptr;
}

void use_high_priority_stream(const at::Device& device) {
#ifdef ZO2_WITH_CUDA
  if (device.is_cuda()) {
    const c10::DeviceIndex i = device.has_index() ? device.index() : c10::cuda::current_device();
    c10::cuda::setCurrentCUDAStream(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, i));
  }
#endif
  (void)device;
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

std::string allocator_report(const at::Device& device) {
  std::string out;
#if defined(ZO2_WITH_CUDA) && TORCH_VERSION_MAJOR >= 2
  if (!device.is_cuda()) return out;
  const auto snap = c10::cuda::CUDACachingAllocator::snapshot();
  char line[256];
  for (const auto& seg : snap.segments) {
    if (seg.device != device.index()) continue;
    std::vector<size_t> free_blocks;
    for (const auto& b : seg.blocks)
      if (!b.allocated) free_blocks.push_back(b.size);
    std::sort(free_blocks.rbegin(), free_blocks.rend());
    std::snprintf(line, sizeof(line), "segment %s%s stream %p: %.1f MiB, allocated %.1f MiB, %zu free blocks",
                  seg.is_large ? "large" : "small", seg.is_expandable ? " expandable" : "", static_cast<void*>(seg.stream),
                  seg.total_size / 1048576.0, seg.allocated_size / 1048576.0, free_blocks.size());
    out += line;
    free_blocks.resize(std::min<size_t>(free_blocks.size(), 6));  // the largest ones
    for (size_t i = 0; i < free_blocks.size(); ++i)
      out += (i ? ", " : " (largest: ") + std::to_string(free_blocks[i] >> 20) + " MiB";
    out += free_blocks.empty() ? "\n" : ")\n";
  }
#else
  (void)device;
#endif
  return out;
}

int64_t peak_reserved_bytes(const at::Device& device) {
#ifdef ZO2_WITH_CUDA
  if (device.is_cuda()) return c10::cuda::CUDACachingAllocator::getDeviceStats(device.index()).reserved_bytes[0].peak;
#endif
  (void)device;
  return 0;
}

void reset_peak_memory(const at::Device& device) {
#ifdef ZO2_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#endif
  (void)device;
}

void release_cached_memory(const at::Device& device) {
#ifdef ZO2_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
  (void)device;
}

int64_t device_used_bytes(const at::Device& device) {
#ifdef ZO2_WITH_CUDA
  if (device.is_cuda()) {
    size_t free = 0, total = 0;
    c10::cuda::CUDAGuard g(device.index());
    if (cudaMemGetInfo(&free, &total) == cudaSuccess) return static_cast<int64_t>(total - free);
  }
#endif
  (void)device;
  return 0;
}

namespace {
// Median milliseconds of `fn` over `reps` runs, timed with the device's clock (events on CUDA).
template <class F>
double median_ms(const at::Device& device, int reps, F fn) {
  std::vector<double> ms;
  fn();  // warm-up
  synchronize(device);
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    synchronize(device);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}
}  // namespace

double measure_copy_gbps(const at::Device& device, bool host_to_device, int64_t bytes) {
  if (!device.is_cuda()) return 0;
  at::Tensor host = at::empty({bytes}, at::TensorOptions().dtype(at::kByte).pinned_memory(true)).fill_(1);
  at::Tensor dev = at::empty({bytes}, at::TensorOptions().dtype(at::kByte).device(device)).fill_(2);
  const double ms = median_ms(device, 5, [&] {
    if (host_to_device)
      dev.copy_(host, true);
    else
      host.copy_(dev, true);
  });
  return static_cast<double>(bytes) / (ms * 1e-3) / 1e9;
}

double measure_device_copy_gbps(const at::Device& device, int64_t bytes) {
  if (!device.is_cuda()) return 0;
  at::Tensor a = at::empty({bytes}, at::TensorOptions().dtype(at::kByte).device(device)).fill_(1);
  at::Tensor b = at::empty_like(a);
  const double ms = median_ms(device, 10, [&] { b.copy_(a); });
  return 2.0 * static_cast<double>(bytes) / (ms * 1e-3) / 1e9;
}

double measure_matmul_tflops(const at::Device& device, at::ScalarType dtype, int64_t n) {
  at::Tensor a = at::randn({n, n}, at::TensorOptions().dtype(dtype).device(device));
  at::Tensor b = at::randn({n, n}, at::TensorOptions().dtype(dtype).device(device));
  at::Tensor c = at::empty({n, n}, a.options());
  const double ms = median_ms(device, device.is_cuda() ? 10 : 2, [&] { at::mm_out(c, a, b); });
  return 2.0 * static_cast<double>(n) * n * n / (ms * 1e-3) / 1e12;
}

at::Device parse_device(const std::string& name) {
  at::Device d(at::kCPU);
  if (name == "auto") {
    d = at::hasCUDA() ? at::Device(at::kCUDA) : at::Device(at::kCPU);
  } else {
    try {
      d = at::Device(name);
    } catch (const c10::Error&) {
      throw_error("invalid device '", name, "' (use cpu, cuda or cuda:N)");
    }
    ZO2_REQUIRE(d.is_cpu() || d.is_cuda(), "device '", name, "' is neither cpu nor cuda");
    ZO2_REQUIRE(d.is_cpu() || at::hasCUDA(), "device '", name, "' asked for, but this zo2 has no CUDA device");
  }
#ifdef ZO2_WITH_CUDA
  // Always an explicit index: streams, events and allocator statistics need one.
  if (d.is_cuda() && !d.has_index()) d = at::Device(at::kCUDA, c10::cuda::current_device());
#endif
  return d;
}

}  // namespace zo2
