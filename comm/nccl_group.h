// The NCCL backend: MpiGroup for bootstrap (ncclUniqueId from rank 0 over MPI_Bcast), barrier and
// abort; the data collectives run through NCCL on this rank's GPU. The interface keeps values on the
// host, so each call stages them through a small pinned buffer and a persistent device buffer on a
// dedicated stream.
//
// The communicator is non-blocking (ncclConfig_t::blocking = 0): init, connection setup (NCCL >= 2.22
// connects lazily, inside the first collective that needs a connection) and enqueueing return at once
// with ncclInProgress and go on in NCCL's own thread, so that every wait -- for the communicator state,
// then for the stream -- is a poll against the collective deadline. A peer that hangs anywhere, init
// included, ends the job within ZO2_COLLECTIVE_TIMEOUT instead of blocking this rank inside NCCL.
#pragma once

#include <cstddef>

#include "comm/comm_check.h"  // cuda_runtime.h, nccl.h
#include "comm/mpi_group.h"

namespace zo2 {

class NcclGroup final : public MpiGroup {
 public:
  explicit NcclGroup(double timeout_s);
  // Normal end: ncclCommFinalize (polled), ncclCommDestroy. While an exception unwinds: ncclCommAbort.
  ~NcclGroup() override;

  void allreduce_sum(double* values, int n) override;
  void allgather(const double* send, int n, double* recv) override;
  void allgather_u64(const uint64_t* send, int n, uint64_t* recv) override;
  void broadcast_u64(uint64_t* values, int n, int root) override;
  [[noreturn]] void abort(int code) override;

 private:
  void allgather_as(const void* send, int n, ncclDataType_t type, void* recv, const char* what);
  // Host `in` -> device buffer at byte `in_at`; launch(device buffer) enqueues the NCCL call on
  // stream_ and returns its result; the device buffer's first `out_bytes` -> host `out`.
  template <class Launch>
  void exchange(const char* what, const void* in, size_t in_at, size_t in_bytes, void* out, size_t out_bytes,
                Launch launch);
  void reserve(size_t bytes);
  // `r` is what a call on the non-blocking communicator returned: an error ends the job; otherwise
  // waits until the communicator state leaves ncclInProgress (NCCL's rule before the next call or
  // any other work on its stream).
  void settle(const char* what, ncclResult_t r);
  void wait_stream(const char* what);

  ncclComm_t nccl_ = nullptr;
  cudaStream_t stream_ = nullptr;
  char* dev_ = nullptr;   // device staging buffer
  char* host_ = nullptr;  // pinned, so that the copies are truly asynchronous and the wait can time out
  size_t capacity_ = 0;
};

}  // namespace zo2
