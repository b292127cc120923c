// Ordered queues of device work and points in them: CUDA streams and events when zo2 has CUDA and the
// device is a GPU; on the CPU every operation runs at once and markers are trivially complete, so the
// same schedule (and its tests) runs in a CPU-only build.
#pragma once

#include <ATen/ATen.h>

#include <memory>

namespace zo2 {

class Marker {
 public:
  Marker();
  ~Marker();
  Marker(Marker&&) noexcept;
  Marker& operator=(Marker&&) noexcept;
  bool recorded() const;
  // Blocks the host until the work before the marker has completed (no-op on the CPU or unrecorded).
  void synchronize() const;
  // Milliseconds between two completed markers of one device (timing only; syncs on `end`).
  static float elapsed_ms(const Marker& start, const Marker& end);

 private:
  friend class Queue;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Queue {
 public:
  // The current (compute) stream of `device`.
  static Queue current(const at::Device& device);
  // A side stream from LibTorch's pool: high priority for copies, low for work that should only fill
  // what the compute stream leaves idle.
  static Queue side(const at::Device& device, bool high_priority = true);

  // Marks this point of the queue; `timing` markers can be measured with Marker::elapsed_ms.
  void record(Marker& m, bool timing = false) const;
  // Later work on this queue waits for `m` (no host synchronisation). An unrecorded marker is a no-op.
  void wait(const Marker& m) const;
  // dst <- src on this queue, asynchronous where the memory allows it (pinned host <-> device).
  void copy(const at::Tensor& dst, const at::Tensor& src) const;
  // Blocks the host until the queue is drained.
  void synchronize() const;
  // Runs LibTorch ops issued while the guard lives on this queue.
  class Guard {
   public:
    explicit Guard(const Queue& q);
    ~Guard();

   private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
  };

  const at::Device& device() const { return device_; }
  bool is_cuda() const { return device_.is_cuda(); }

 private:
  static Queue on(const at::Device& device, bool side, bool high_priority);

  at::Device device_ = at::kCPU;
  int64_t stream_id_ = 0;  // c10::Stream id packed, CUDA only
  friend class Guard;
};

// Page-locked host memory of `bytes` (cudaHostAlloc when CUDA is available, ordinary memory otherwise),
// freed with the returned tensor.
at::Tensor alloc_host(int64_t bytes, bool pinned);
bool is_pinned(const at::Tensor& t);
// Page-locks memory zo2 did not allocate (a shared-memory segment) with cudaHostRegister, so copies
// from and to it run on the copy engines; no-op without CUDA. unregister_host waits for the device,
// then undoes it.
void register_host(void* ptr, size_t bytes);
void unregister_host(void* ptr);

}  // namespace zo2
