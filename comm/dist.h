// Process bootstrap: which ranks exist, where each one runs, and the collectives between them.
// Backends: single (one process, no MPI_Init), mpi (host collectives over MPI, the CPU/CI backend),
// nccl (MPI for bootstrap and barrier, NCCL on this rank's GPU for the data). This header is MPI- and
// NCCL-free; see docs/multi-node.md for launching, environment variables and failure semantics.
#pragma once

#include <memory>
#include <string>

#include "common/collectives.h"

namespace zo2 {

enum class Backend { Auto, Single, Mpi, Nccl };
const char* backend_name(Backend b);
// "auto" | "single" | "mpi" | "nccl"; throws zo2::Error naming `what` (e.g. "--backend") otherwise.
Backend parse_backend(const std::string& s, const std::string& what);

struct DistOptions {
  // Auto: ZO2_BACKEND if set; else single when not started as one of several ranks (no mpirun/srun
  // world > 1); else nccl when built with NCCL and a CUDA device is visible; else mpi.
  Backend backend = Backend::Auto;
  // Longest wait in one collective before the job is aborted; <= 0: ZO2_COLLECTIVE_TIMEOUT, else 300 s.
  double collective_timeout_s = 0;
};

// The collectives plus this rank's place. bytes_sent() counts payload bytes this rank contributes:
// n * 8 per allreduce_sum / allgather / allgather_u64, n * 8 per broadcast_u64 on the root (0
// elsewhere), 0 per barrier. It is the logical payload, not the wire traffic of the algorithm the
// library picks (a ring allreduce moves about 2 (world-1)/world times as much).
class ProcessGroup : public Collectives {
 public:
  ~ProcessGroup() override;
  Backend backend() const { return backend_; }
  int local_rank() const { return local_rank_; }    // rank among the ranks on this node
  int local_world() const { return local_world_; }  // ranks on this node
  const char* local_rank_source() const { return local_rank_source_; }  // env variable or MPI call
  int device() const { return device_; }            // CUDA device bound to this rank; -1 for none
  double collective_timeout_s() const { return timeout_s_; }  // longest wait in one collective
  uint64_t bytes_sent() const final { return bytes_sent_; }

 protected:
  ProcessGroup(Backend b, double timeout_s) : backend_(b), timeout_s_(timeout_s) {}
  Backend backend_;
  double timeout_s_;
  int local_rank_ = 0;
  int local_world_ = 1;
  const char* local_rank_source_ = "single process";
  int device_ = -1;
  uint64_t bytes_sent_ = 0;
};

// Starts the process group. Call it first thing in a command: it binds this rank's GPU
// (cudaSetDevice(local_rank % devices)) before LibTorch touches CUDA, and it makes the group the one
// abort_job() ends. One group per process. Throws zo2::Error for a bad option or environment.
std::unique_ptr<ProcessGroup> init_process_group(const DistOptions& options = {});

// Whether MPI_Init has run in this process (and MPI_Finalize not yet); false in a build without MPI.
// The single backend never initialises MPI, so zo2 runs without a launcher.
bool mpi_active();

// After a fatal error on this rank: ends every rank of the job (ncclCommAbort, MPI_Abort) when one
// exists -- also when the group was destroyed while the exception unwound. Returns otherwise.
void abort_job(int code);

}  // namespace zo2
