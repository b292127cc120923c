// Failure scenarios for tests/mpi/expect_job_abort.sh: one rank fails while the others wait in a
// collective, and the whole job must end. The group lives inside the try block exactly as in a zo2
// command under launcher/main.cpp, so an exception unwinds through the group's destructor before
// cli::abort_peers() runs.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <thread>

#include "common/error.h"
#include "launcher/cli.h"
#include "mpi/mpi_test_env.h"

namespace zo2::test {
namespace {
// Long enough that only the job abort can end the scenario within the driver's deadline.
void linger() { std::this_thread::sleep_for(std::chrono::seconds(600)); }
}  // namespace

int run_crash(const std::string& mode, int crash_rank, const DistOptions& options) {
  try {
    auto pg = init_process_group(options);
    ZO2_REQUIRE(crash_rank >= 0 && crash_rank < pg->world(), "--crash-rank ", crash_rank, " outside the world");
    pg->barrier();  // every rank is up before one fails
    if (pg->rank() == crash_rank) {
      std::fprintf(stderr, "rank %d: %s\n", crash_rank, mode.c_str());
      if (mode == "kill") std::raise(SIGKILL);  // the launcher must notice and end the job
      if (mode == "throw") throw_error("deliberate failure on rank ", crash_rank);  // abort_peers must
      if (mode == "hang") linger();  // the peers' collective timeout must
      throw_error("--crash=", mode, ": expected kill, throw or hang");
    }
    double x = 1;
    pg->allreduce_sum(&x, 1);  // the failed rank never joins
    std::fprintf(stderr, "rank %d: allreduce_sum returned although rank %d failed\n", pg->rank(), crash_rank);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zo2: error: %s\n", e.what());
    cli::abort_peers();
    std::fprintf(stderr, "abort_peers() returned in a multi-rank job\n");
    linger();  // so that the driver sees the job hang instead of this rank's exit status
    return 1;
  }
}

}  // namespace zo2::test
