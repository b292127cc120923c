#include "common/device_queue.h"

#include <cstdlib>
#include <cstring>

#include "common/error.h"

#ifdef ZO2_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include "common/check.h"
#endif

namespace zo2 {

struct Marker::Impl {
#ifdef ZO2_WITH_CUDA
  std::unique_ptr<at::cuda::CUDAEvent> event;
#endif
  bool recorded = false;
};

Marker::Marker() : impl_(std::make_unique<Impl>()) {}
Marker::~Marker() = default;
Marker::Marker(Marker&&) noexcept = default;
Marker& Marker::operator=(Marker&&) noexcept = default;
bool Marker::recorded() const { return impl_->recorded; }

void Marker::synchronize() const {
#ifdef ZO2_WITH_CUDA
  if (impl_->recorded && impl_->event) impl_->event->synchronize();
#endif
}

float Marker::elapsed_ms(const Marker& start, const Marker& end) {
#ifdef ZO2_WITH_CUDA
  if (start.impl_->event && end.impl_->event) {
    end.impl_->event->synchronize();
    return start.impl_->event->elapsed_time(*end.impl_->event);
  }
#endif
  (void)start;
  (void)end;
  return 0.f;
}

#ifdef ZO2_WITH_CUDA
namespace {
c10::cuda::CUDAStream stream_of(const at::Device& d, int64_t id) {
  return c10::cuda::CUDAStream::unpack3(id, d.index(), c10::DeviceType::CUDA);
}
}  // namespace
#endif

Queue Queue::current(const at::Device& device) { return on(device, /*side=*/false, false); }
Queue Queue::side(const at::Device& device, bool high_priority) { return on(device, /*side=*/true, high_priority); }

Queue Queue::on(const at::Device& device, bool side, bool high_priority) {
  Queue q;
  q.device_ = device;
#ifdef ZO2_WITH_CUDA
  if (device.is_cuda()) {
    // "cuda" without an index is the current device. Streams need the index: a stream guard for index -1
    // writes in front of LibTorch's per-device table of current streams (heap corruption, found at exit).
    if (!device.has_index()) q.device_ = at::Device(at::kCUDA, c10::cuda::current_device());
    const c10::DeviceIndex i = q.device_.index();
    q.stream_id_ = (side ? c10::cuda::getStreamFromPool(high_priority, i) : c10::cuda::getCurrentCUDAStream(i)).id();
  }
#endif
  (void)side;
  (void)high_priority;
  return q;
}

void Queue::record(Marker& m, bool timing) const {
  m.impl_->recorded = true;
#ifdef ZO2_WITH_CUDA
  if (device_.is_cuda()) {
    if (!m.impl_->event) m.impl_->event = std::make_unique<at::cuda::CUDAEvent>(timing ? cudaEventDefault : cudaEventDisableTiming);
    m.impl_->event->record(stream_of(device_, stream_id_));
  }
#endif
  (void)timing;
}

void Queue::wait(const Marker& m) const {
#ifdef ZO2_WITH_CUDA
  if (device_.is_cuda() && m.impl_->recorded && m.impl_->event) m.impl_->event->block(stream_of(device_, stream_id_));
#endif
  (void)m;
}

void Queue::copy(const at::Tensor& dst, const at::Tensor& src) const {
#ifdef ZO2_WITH_CUDA
  if (device_.is_cuda()) {
    c10::cuda::CUDAStreamGuard g(stream_of(device_, stream_id_));
    dst.copy_(src, /*non_blocking=*/true);
    return;
  }
#endif
  dst.copy_(src);
}

void Queue::synchronize() const {
#ifdef ZO2_WITH_CUDA
  if (device_.is_cuda()) stream_of(device_, stream_id_).synchronize();
#endif
}

struct Queue::Guard::Impl {
#ifdef ZO2_WITH_CUDA
  std::unique_ptr<c10::cuda::CUDAStreamGuard> guard;
#endif
};

Queue::Guard::Guard(const Queue& q) : impl_(std::make_unique<Impl>()) {
#ifdef ZO2_WITH_CUDA
  if (q.device_.is_cuda()) impl_->guard = std::make_unique<c10::cuda::CUDAStreamGuard>(stream_of(q.device_, q.stream_id_));
#endif
  (void)q;
}
Queue::Guard::~Guard() = default;

at::Tensor alloc_host(int64_t bytes, bool pinned) {
#ifdef ZO2_WITH_CUDA
  if (pinned) {
    void* p = nullptr;
    const cudaError_t e = cudaHostAlloc(&p, static_cast<size_t>(std::max<int64_t>(bytes, 1)), cudaHostAllocDefault);
    ZO2_REQUIRE(e == cudaSuccess, "cannot pin ", bytes, " bytes of host memory: ", cudaGetErrorString(e),
                " (host RAM too small for the streamed blocks?)");
    return at::from_blob(p, {bytes}, [](void* ptr) { cudaFreeHost(ptr); }, at::TensorOptions().dtype(at::kByte));
  }
#endif
  (void)pinned;
  return at::empty({bytes}, at::TensorOptions().dtype(at::kByte));
}

bool is_pinned(const at::Tensor& t) {
#ifdef ZO2_WITH_CUDA
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, t.data_ptr()) == cudaSuccess) return a.type == cudaMemoryTypeHost;
  cudaGetLastError();
#endif
  (void)t;
  return false;
}

void register_host(void* ptr, size_t bytes) {
#ifdef ZO2_WITH_CUDA
  const cudaError_t e = cudaHostRegister(ptr, bytes, cudaHostRegisterDefault);
  ZO2_REQUIRE(e == cudaSuccess, "cannot page-lock ", bytes, " bytes of shared host memory: ", cudaGetErrorString(e),
              " (ulimit -l, or --share-host-store false)");
#endif
  (void)ptr;
  (void)bytes;
}

void unregister_host(void* ptr) {
#ifdef ZO2_WITH_CUDA
  // Copies from or to the memory may still be queued (like cudaFreeHost, wait for the device first).
  if (cudaDeviceSynchronize() != cudaSuccess || cudaHostUnregister(ptr) != cudaSuccess)
    cudaGetLastError();  // teardown: nothing left to do
#endif
  (void)ptr;
}

}  // namespace zo2
