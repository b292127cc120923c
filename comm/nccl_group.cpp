#ifdef ZO2_WITH_NCCL
#include "comm/nccl_group.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "comm/comm_check.h"
#include "comm/launch_env.h"
#include "common/error.h"
#include "common/poll.h"

namespace zo2 {
namespace {

// Longest wait for ncclCommAbort before the job is ended without it.
constexpr double kAbortWaitS = 10;

const char* last_error(ncclComm_t comm) {
  const char* text = ncclGetLastError(comm);
  return text != nullptr && *text != '\0' ? text : "no detail";
}

// ncclCommAbort on a side thread, waited for at most kAbortWaitS: it stops this rank's kernels and
// NCCL's threads, but nothing may keep the caller from MPI_Abort if it should hang itself.
void abort_comm(ncclComm_t comm) {
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::thread([comm, done] {
    ncclCommAbort(comm);
    done->store(true);
  }).detach();
  if (!poll_until(kAbortWaitS, [&] { return done->load(); }))
    std::fprintf(stderr, "zo2: ncclCommAbort did not return within %g s; ending the job without it\n", kAbortWaitS);
}

}  // namespace

NcclGroup::NcclGroup(double timeout_s) : MpiGroup(timeout_s, Backend::Nccl) {
  ZO2_REQUIRE(device_ >= 0, "nccl backend on ", rank_at_host(), ": no CUDA device is visible (use backend mpi)");
  default_nccl_env();
  int runtime = 0;
  NCCL_CHECK(ncclGetVersion(&runtime));
  // Two libnccl.so.2 on one machine (pip's and the toolkit's): headers and library must agree.
  if (rank_ == 0 && runtime / 100 != NCCL_VERSION_CODE / 100)
    std::fprintf(stderr, "zo2: warning: built against NCCL %d but running NCCL %d; point NCCL_ROOT at the copy LibTorch loads\n",
                 NCCL_VERSION_CODE, runtime);

  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  if (rank_ == 0) NCCL_CHECK(ncclGetUniqueId(&id));
  MPI_Request req;
  MPI_CHECK(MPI_Ibcast(&id, sizeof(id), MPI_BYTE, 0, comm_, &req));
  wait(&req, "ncclUniqueId broadcast");
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  const ncclResult_t r = ncclCommInitRankConfig(&nccl_, world_, id, rank_, &config);
  if (r != ncclSuccess && r != ncclInProgress) nccl_ = nullptr;  // no communicator to query or abort
  settle("ncclCommInitRankConfig", r);
  // Warm-up while every rank is known to be alive: the connections a training step needs (allreduce,
  // allgather) are made here, so a failure to connect shows at start-up. Its bytes are not the caller's.
  double one = 1;
  allreduce_sum(&one, 1);
  std::vector<uint64_t> ranks(world_);
  const uint64_t me = rank_;
  allgather_u64(&me, 1, ranks.data());
  for (int r = 0; r < world_; ++r)
    ZO2_REQUIRE(ranks[r] == static_cast<uint64_t>(r) && one == world_, "nccl warm-up on ", rank_at_host(),
                " gave wrong values (sum ", one, ", rank ", r, " -> ", ranks[r], ")");
  bytes_sent_ = 0;
}

NcclGroup::~NcclGroup() {
  // No checks that throw: a destructor must not, and on the error path the job is ending anyway.
  if (nccl_ != nullptr) {
    if (std::uncaught_exceptions() > 0) {
      abort_comm(nccl_);
    } else {
      settle("ncclCommFinalize", ncclCommFinalize(nccl_));  // peers gone or hanging: ends the job
      ncclCommDestroy(nccl_);
    }
    nccl_ = nullptr;
  }
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
  if (dev_ != nullptr) cudaFree(dev_);
  if (host_ != nullptr) cudaFreeHost(host_);
}

void NcclGroup::abort(int code) {
  if (nccl_ != nullptr) {
    ncclComm_t c = nccl_;
    nccl_ = nullptr;
    abort_comm(c);  // stops this rank's in-flight kernels so that MPI_Abort is not stuck behind them
  }
  MpiGroup::abort(code);
}

void NcclGroup::settle(const char* what, ncclResult_t r) {
  if (r != ncclSuccess && r != ncclInProgress)
    fatal(what, std::string("failed: NCCL error ") + ncclGetErrorString(r) + " (" +
                    (nccl_ != nullptr ? last_error(nccl_) : "no communicator") + ")");
  ncclResult_t state = ncclInProgress;
  const bool in_time = poll_until(timeout_s_, [&] {
    if (ncclCommGetAsyncError(nccl_, &state) != ncclSuccess) state = ncclInternalError;
    return state != ncclInProgress;
  });
  if (!in_time) fatal(what, timeout_text(timeout_s_));
  if (state != ncclSuccess)
    fatal(what, std::string("failed: NCCL error ") + ncclGetErrorString(state) + " (" + last_error(nccl_) + ")");
}

void NcclGroup::reserve(size_t bytes) {
  if (bytes <= capacity_) return;
  const size_t cap = std::max<size_t>(bytes, 4096);
  if (dev_ != nullptr) CUDA_CHECK(cudaFree(dev_));  // every call waited for its stream: nothing in flight
  if (host_ != nullptr) CUDA_CHECK(cudaFreeHost(host_));
  dev_ = nullptr;
  host_ = nullptr;
  capacity_ = 0;
  CUDA_CHECK(cudaMalloc(&dev_, cap));
  CUDA_CHECK(cudaMallocHost(&host_, cap));
  capacity_ = cap;
}

void NcclGroup::wait_stream(const char* what) {
  cudaError_t stream = cudaErrorNotReady;
  ncclResult_t async = ncclSuccess;
  const auto failed = [](ncclResult_t r) { return r != ncclSuccess && r != ncclInProgress; };
  const bool in_time = poll_until(timeout_s_, [&] {
    if (ncclCommGetAsyncError(nccl_, &async) != ncclSuccess) async = ncclInternalError;
    if (failed(async)) return true;
    stream = cudaStreamQuery(stream_);
    return stream != cudaErrorNotReady;
  });
  if (!in_time) fatal(what, timeout_text(timeout_s_));
  if (failed(async))
    fatal(what, std::string("failed: NCCL error ") + ncclGetErrorString(async) + " (" + last_error(nccl_) + ")");
  if (stream != cudaSuccess) fatal(what, std::string("failed: CUDA error ") + cudaGetErrorString(stream));
}

template <class Launch>
void NcclGroup::exchange(const char* what, const void* in, size_t in_at, size_t in_bytes, void* out,
                         size_t out_bytes, Launch launch) {
  reserve(std::max(in_at + in_bytes, out_bytes));
  std::memcpy(host_ + in_at, in, in_bytes);
  CUDA_CHECK(cudaMemcpyAsync(dev_ + in_at, host_ + in_at, in_bytes, cudaMemcpyHostToDevice, stream_));
  settle(what, launch(dev_));  // enqueued (connections made) before anything else goes on stream_
  CUDA_CHECK(cudaMemcpyAsync(host_, dev_, out_bytes, cudaMemcpyDeviceToHost, stream_));
  wait_stream(what);
  std::memcpy(out, host_, out_bytes);
}

void NcclGroup::allreduce_sum(double* values, int n) {
  check_args("allreduce_sum", n);
  if (n == 0) return;
  const size_t bytes = sizeof(double) * n;
  exchange("allreduce_sum", values, 0, bytes, values, bytes,
           [&](char* buf) { return ncclAllReduce(buf, buf, n, ncclFloat64, ncclSum, nccl_, stream_); });
  bytes_sent_ += bytes;
}

void NcclGroup::allgather(const double* send, int n, double* recv) {
  allgather_as(send, n, ncclFloat64, recv, "allgather");
}

void NcclGroup::allgather_u64(const uint64_t* send, int n, uint64_t* recv) {
  allgather_as(send, n, ncclUint64, recv, "allgather_u64");
}

void NcclGroup::allgather_as(const void* send, int n, ncclDataType_t type, void* recv, const char* what) {
  check_args(what, n);
  if (n == 0) return;
  const size_t bytes = 8 * static_cast<size_t>(n);  // both element types are 8 bytes
  // In place: NCCL wants this rank's block at its slot of the receive buffer.
  exchange(what, send, bytes * rank_, bytes, recv, bytes * world_,
           [&](char* buf) { return ncclAllGather(buf + bytes * rank_, buf, n, type, nccl_, stream_); });
  bytes_sent_ += bytes;
}

void NcclGroup::broadcast_u64(uint64_t* values, int n, int root) {
  check_args("broadcast_u64", n, root);
  if (n == 0) return;
  const size_t bytes = sizeof(uint64_t) * n;
  exchange("broadcast_u64", values, 0, bytes, values, bytes,
           [&](char* buf) { return ncclBroadcast(buf, buf, n, ncclUint64, root, nccl_, stream_); });
  if (rank_ == root) bytes_sent_ += bytes;
}

}  // namespace zo2
#endif  // ZO2_WITH_NCCL
