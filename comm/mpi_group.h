// The MPI backend: host collectives over a duplicate of MPI_COMM_WORLD. It owns MPI's lifetime
// (MPI_Init_thread unless MPI is already up, MPI_Finalize at the end) and is the base of the NCCL
// backend, which reuses its bootstrap, barrier and abort.
#pragma once

#include <string>

#include "comm/comm_check.h"  // mpi.h
#include "comm/dist.h"

namespace zo2 {

class MpiGroup : public ProcessGroup {
 public:
  explicit MpiGroup(double timeout_s, Backend b = Backend::Mpi);
  // Normal end: MPI_Finalize. While an exception unwinds: leaves MPI up so abort_job() can MPI_Abort.
  ~MpiGroup() override;

  int rank() const override { return rank_; }
  int world() const override { return world_; }
  void allreduce_sum(double* values, int n) override;
  void allgather(const double* send, int n, double* recv) override;
  void allgather_u64(const uint64_t* send, int n, uint64_t* recv) override;
  void broadcast_u64(uint64_t* values, int n, int root) override;
  void barrier() override;
  [[noreturn]] void abort(int code) override;

 protected:
  // Throws zo2::Error for a negative count or a root outside the world.
  void check_args(const char* what, int n, int root = 0) const;
  // Waits for a non-blocking MPI operation; past the deadline or on error, ends the job.
  void wait(MPI_Request* req, const char* what);
  // Prints "zo2: error: <backend> <what> <why> on rank r@host; aborting the job" and calls abort(1).
  [[noreturn]] void fatal(const char* what, const std::string& why);

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int world_ = 1;
  bool owns_mpi_ = false;

 private:
  void allgather_as(const void* send, int n, MPI_Datatype type, void* recv, const char* what);
};

// "did not complete within <s> s (...)": the one reason text for a collective timeout.
std::string timeout_text(double timeout_s);

// MPI_Initialized and not MPI_Finalized.
bool mpi_is_active();

// MPI_Abort(MPI_COMM_WORLD) if MPI is initialised and not finalised; returns otherwise.
void mpi_abort_if_initialized(int code);

}  // namespace zo2
