// Device helpers that hide the CUDA-only parts of LibTorch from code that must also build CPU-only.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace zo2 {

// The current CUDA stream of `device` as a cudaStream_t (void*); nullptr for the CPU.
void* current_stream(const at::Device& device);
// Makes a high-priority stream the current stream of `device` on this thread (before models that
// capture it are built), so that work on low-priority side streams only fills what compute leaves
// idle. No-op on the CPU.
void use_high_priority_stream(const at::Device& device);
// Blocks until all work queued on `device` is done (no-op on the CPU).
void synchronize(const at::Device& device);
// Peak bytes the allocator handed out on `device` since the last reset (CUDA), or the process's
// peak resident set (CPU).
int64_t peak_memory_bytes(const at::Device& device);
void reset_peak_memory(const at::Device& device);
// Peak bytes the CUDA allocator held reserved (allocated or cached) since the last reset; 0 on the CPU.
int64_t peak_reserved_bytes(const at::Device& device);
// Returns the allocator's cached, unused device memory to the driver (after setting up a model, whose
// initialisation temporaries would otherwise stay reserved for the whole run). No-op on the CPU.
void release_cached_memory(const at::Device& device);
// The CUDA allocator's segments as text (size, in use, free blocks by size) for memory diagnostics
// (zo2 bench with ZO2_ALLOC_REPORT=1); empty on the CPU or before LibTorch 2.
std::string allocator_report(const at::Device& device);
// Parses "cpu", "cuda", "cuda:1"; "auto" picks CUDA when available. Throws naming the value.
at::Device parse_device(const std::string& name);

// Device memory in use by everyone (total - free, what NVML reports as "used"); 0 on the CPU.
int64_t device_used_bytes(const at::Device& device);
// Link and compute ceilings measured on this machine (benchmarks report against them).
double measure_copy_gbps(const at::Device& device, bool host_to_device, int64_t bytes = int64_t(1) << 30);
double measure_matmul_tflops(const at::Device& device, at::ScalarType dtype, int64_t n = 8192);
double measure_device_copy_gbps(const at::Device& device, int64_t bytes = int64_t(1) << 30);  // read + write

}  // namespace zo2
