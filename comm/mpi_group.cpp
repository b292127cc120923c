#ifdef ZO2_WITH_MPI
#include "comm/mpi_group.h"

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "comm/comm_check.h"
#include "comm/device.h"
#include "comm/launch_env.h"
#include "common/poll.h"
#include "common/error.h"

namespace zo2 {

const char* mpi_error_text(int code) {
  thread_local char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "unknown MPI error";
  return text;
}

MpiGroup::MpiGroup(double timeout_s, Backend b) : ProcessGroup(b, timeout_s) {
  // The launcher's local rank first: it lets the GPU be bound before MPI_Init (a CUDA-aware MPI picks
  // its device there), and some external-PMIx builds split wrongly under srun (ompi#10416).
  const auto hint = local_rank_from_env();
  if (hint) device_ = bind_device(hint->rank);
  int up = 0;
  MPI_CHECK(MPI_Initialized(&up));
  if (!up) {
    int provided = 0;
    MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
    owns_mpi_ = true;
  }
  // Errors come back as codes (MPI_CHECK turns them into zo2::Error naming the call) instead of
  // MPI's default of aborting without saying where.
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm_));
  MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  MPI_CHECK(MPI_Comm_size(comm_, &world_));
  set_process_rank(rank_);

  MPI_Comm node = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  int node_rank = 0;
  MPI_CHECK(MPI_Comm_rank(node, &node_rank));
  MPI_CHECK(MPI_Comm_size(node, &local_world_));
  MPI_CHECK(MPI_Comm_free(&node));
  if (hint) {
    local_rank_ = hint->rank;
    local_rank_source_ = hint->source;
  } else {
    local_rank_ = node_rank;
    local_rank_source_ = "MPI_Comm_split_type";
    device_ = bind_device(local_rank_);
  }
}

MpiGroup::~MpiGroup() {
  if (std::uncaught_exceptions() > 0) return;  // abort_job() follows; Finalize would wait for peers
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  if (owns_mpi_) MPI_Finalize();
}

std::string timeout_text(double timeout_s) {
  char text[160];
  std::snprintf(text, sizeof(text),
                "did not complete within %g s (a peer died or hangs; ZO2_COLLECTIVE_TIMEOUT sets the limit)",
                timeout_s);
  return text;
}

void MpiGroup::wait(MPI_Request* req, const char* what) {
  int done = 0, rc = MPI_SUCCESS;
  const bool in_time = poll_until(timeout_s_, [&] {
    rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
    return rc != MPI_SUCCESS || done;
  });
  if (!in_time) fatal(what, timeout_text(timeout_s_));
  if (rc != MPI_SUCCESS) fatal(what, std::string("failed: MPI error ") + mpi_error_text(rc));
}

void MpiGroup::fatal(const char* what, const std::string& why) {
  std::fprintf(stderr, "zo2: error: %s %s %s on %s; aborting the job\n", backend_name(backend_), what,
               why.c_str(), rank_at_host().c_str());
  abort(1);
  std::_Exit(1);  // not reached (GCC does not see [[noreturn]] through the virtual call)
}

void MpiGroup::check_args(const char* what, int n, int root) const {
  ZO2_REQUIRE(n >= 0 && root >= 0 && root < world_, what, ": count ", n, ", root ", root, " (world ", world_,
              ") on ", rank_at_host());
}

void MpiGroup::allreduce_sum(double* values, int n) {
  check_args("allreduce_sum", n);
  MPI_Request req;
  MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, values, n, MPI_DOUBLE, MPI_SUM, comm_, &req));
  wait(&req, "allreduce_sum");
  bytes_sent_ += sizeof(double) * n;
}

void MpiGroup::allgather(const double* send, int n, double* recv) {
  allgather_as(send, n, MPI_DOUBLE, recv, "allgather");
}

void MpiGroup::allgather_u64(const uint64_t* send, int n, uint64_t* recv) {
  allgather_as(send, n, MPI_UINT64_T, recv, "allgather_u64");
}

void MpiGroup::allgather_as(const void* send, int n, MPI_Datatype type, void* recv, const char* what) {
  check_args(what, n);
  MPI_Request req;
  MPI_CHECK(MPI_Iallgather(send, n, type, recv, n, type, comm_, &req));
  wait(&req, what);
  bytes_sent_ += 8 * static_cast<uint64_t>(n);  // both element types are 8 bytes
}

void MpiGroup::broadcast_u64(uint64_t* values, int n, int root) {
  check_args("broadcast_u64", n, root);
  MPI_Request req;
  MPI_CHECK(MPI_Ibcast(values, n, MPI_UINT64_T, root, comm_, &req));
  wait(&req, "broadcast_u64");
  if (rank_ == root) bytes_sent_ += sizeof(uint64_t) * n;
}

void MpiGroup::barrier() {
  MPI_Request req;
  MPI_CHECK(MPI_Ibarrier(comm_, &req));
  wait(&req, "barrier");
}

void MpiGroup::abort(int code) {
  mpi_abort_if_initialized(code);
  std::_Exit(code);
}

bool mpi_is_active() {
  int up = 0, down = 0;
  MPI_Initialized(&up);
  MPI_Finalized(&down);
  return up && !down;
}

void mpi_abort_if_initialized(int code) {
  if (!mpi_is_active()) return;
  std::fprintf(stderr, "zo2: %s ends the job (MPI_Abort, code %d)\n", rank_at_host().c_str(), code);
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
}

}  // namespace zo2
#endif  // ZO2_WITH_MPI
