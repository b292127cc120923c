// CUDA devices as the process group sees them. Torch-free: the CUDA runtime only, when it is linked.
#pragma once

namespace zo2 {

// Visible CUDA devices; 0 in a build without the CUDA runtime, without a driver, or without a device.
int cuda_device_count();

// One GPU per local rank: cudaSetDevice(local_rank % count) and returns the index, or -1 without a
// device. Must run before anything (LibTorch included) allocates on a GPU.
int bind_device(int local_rank);

}  // namespace zo2
