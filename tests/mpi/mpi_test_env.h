// Shared state of zo2_mpi_tests: the process group every test uses and how main() started it.
#pragma once

#include <string>

#include "comm/dist.h"

namespace zo2::test {

ProcessGroup& group();
// True when main() hid the launcher's local-rank variables (--local-rank-from-mpi).
bool local_rank_env_hidden();

// A failure scenario instead of the tests (--crash=kill|throw|hang, --crash-rank=R); see crash.cpp.
int run_crash(const std::string& mode, int crash_rank, const DistOptions& options);

}  // namespace zo2::test
