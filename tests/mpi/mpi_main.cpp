// zo2_mpi_tests: GoogleTest under mpirun (without mpirun: the suites that need no peers). Every rank runs every test in the same order (the
// collectives pair up); rank 0 prints GoogleTest's output, the other ranks print only their failures,
// and every rank exits non-zero when a test failed on any rank.
// Flags after GoogleTest's own:
//   --backend=auto|mpi|nccl   which process group to test (ctest: mpi; the gpu test: nccl, which exits
//                             77 = skipped without a CUDA device per rank of the node)
//   --local-rank-from-mpi     unset OMPI_COMM_WORLD_LOCAL_RANK/SLURM_LOCALID first, so the local rank
//                             comes from MPI_Comm_split_type
//   --crash=kill|throw|hang --crash-rank=R   a failure scenario instead of the tests (crash.cpp)
// With ZO2_TEST_PID_DIR set, each process writes <dir>/<pid>.pid so a driver can check that none is left.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "comm/device.h"
#include "mpi/mpi_test_env.h"

namespace zo2::test {
namespace {

std::unique_ptr<ProcessGroup> g_group;
bool g_env_hidden = false;

// Ranks other than 0: one line per failed assertion, prefixed with the rank.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed())
      std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                   r.line_number(), r.summary());
  }

 private:
  int rank_;
};

}  // namespace

ProcessGroup& group() { return *g_group; }
bool local_rank_env_hidden() { return g_env_hidden; }

}  // namespace zo2::test

int main(int argc, char** argv) {
  using namespace zo2;
  ::testing::InitGoogleTest(&argc, argv);
  DistOptions options;
  std::string crash;
  int crash_rank = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--backend=", 0) == 0) {
      options.backend = parse_backend(a.substr(10), "--backend");
    } else if (a == "--local-rank-from-mpi") {
      unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
      unsetenv("SLURM_LOCALID");
      test::g_env_hidden = true;
    } else if (a.rfind("--crash=", 0) == 0) {
      crash = a.substr(8);
    } else if (a.rfind("--crash-rank=", 0) == 0) {
      crash_rank = std::stoi(a.substr(13));
    } else {
      std::fprintf(stderr, "zo2_mpi_tests: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (const char* dir = std::getenv("ZO2_TEST_PID_DIR"))
    std::ofstream(std::string(dir) + "/" + std::to_string(getpid()) + ".pid") << getpid() << "\n";
  // NCCL needs one GPU per rank of a node; mpirun says how many ranks this node has.
  const long local_ranks = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE") ? std::atol(std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE")) : 1;
  if (options.backend == Backend::Nccl && cuda_device_count() < std::max(1L, local_ranks)) {
    std::fprintf(stderr, "zo2_mpi_tests: skipped: --backend=nccl needs a CUDA device per rank (%d for %ld ranks)\n",
                 cuda_device_count(), local_ranks);
    return 77;
  }
  if (!crash.empty()) return test::run_crash(crash, crash_rank, options);

  test::g_group = init_process_group(options);
  ProcessGroup& pg = *test::g_group;
  // The multi-rank suites need mpirun; the SingleProcess suite needs its absence.
  const bool single = pg.backend() == Backend::Single;
  if (::testing::GTEST_FLAG(filter) == "*")
    ::testing::GTEST_FLAG(filter) =
        single ? "-Collectives*:ProcessGroupPlacement*:MezoMultiRank*:SharedHostStore*" : "-SingleProcess*";
  if (pg.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new test::FailurePrinter(pg.rank()));
  }
  const int local = RUN_ALL_TESTS();
  double failed_ranks = local != 0 ? 1 : 0;
  pg.allreduce_sum(&failed_ranks, 1);
  if (pg.rank() == 0)
    std::printf("zo2_mpi_tests: %s backend, %d ranks, %g with failures\n", backend_name(pg.backend()), pg.world(),
                failed_ranks);
  test::g_group.reset();
  return failed_ranks > 0 ? 1 : 0;
}
