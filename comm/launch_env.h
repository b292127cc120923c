// What the launcher (mpirun, srun) tells a process through its environment. Read before MPI_Init, so
// that a process started without a launcher never initialises MPI.
#pragma once

#include <optional>
#include <string>

namespace zo2 {

// True when this process is one of several ranks: OMPI_COMM_WORLD_SIZE > 1 (mpirun), PMI_SIZE > 1
// (srun --mpi=pmi2), or PMIX_RANK set (srun --mpi=pmix) with SLURM_STEP_NUM_TASKS > 1 or absent.
bool launched_multi_rank();

// The node-local rank the launcher assigned: OMPI_COMM_WORLD_LOCAL_RANK, else SLURM_LOCALID.
struct LocalRankHint {
  int rank;
  const char* source;  // the variable it came from
};
std::optional<LocalRankHint> local_rank_from_env();

// Seconds a collective may wait before the job is aborted: ZO2_COLLECTIVE_TIMEOUT if set, else `fallback`.
double collective_timeout_from_env(double fallback);

// NCCL_NVLS_ENABLE=0 unless the user set it (NVLink multicast stays off on the GPU machines).
void default_nccl_env();

// An integer environment variable; nullopt when unset. Throws zo2::Error naming the variable when it
// is set to something that is not an integer.
std::optional<long> env_long(const char* name);

}  // namespace zo2
