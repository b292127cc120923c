// The single backend, as zo2 gets it when started without a launcher (ctest single_process runs
// zo2_mpi_tests without mpirun): no MPI_Init, one rank, collectives that are identities, no abort.
#include <gtest/gtest.h>

#include <vector>

#include "comm/device.h"
#include "common/error.h"
#include "mpi/mpi_test_env.h"

namespace zo2::test {
namespace {

TEST(SingleProcess, NoMpiAndOneRank) {
  ProcessGroup& pg = group();
  EXPECT_EQ(pg.backend(), Backend::Single);
  EXPECT_FALSE(mpi_active());
  EXPECT_EQ(pg.rank(), 0);
  EXPECT_EQ(pg.world(), 1);
  EXPECT_EQ(pg.local_rank(), 0);
  EXPECT_EQ(pg.local_world(), 1);
  EXPECT_EQ(pg.device(), cuda_device_count() > 0 ? 0 : -1);
}

TEST(SingleProcess, CollectivesAreIdentities) {
  ProcessGroup& pg = group();
  std::vector<double> d = {1.5, -2.25}, g(2);
  std::vector<uint64_t> u = {~0ull, 7}, h(2);
  pg.allreduce_sum(d.data(), 2);
  EXPECT_EQ(d, (std::vector<double>{1.5, -2.25}));
  pg.allgather(d.data(), 2, g.data());
  EXPECT_EQ(g, d);
  pg.allgather_u64(u.data(), 2, h.data());
  EXPECT_EQ(h, u);
  pg.broadcast_u64(u.data(), 2, 0);
  EXPECT_EQ(u, (std::vector<uint64_t>{~0ull, 7}));
  pg.barrier();
  EXPECT_EQ(pg.bytes_sent(), 0u);
}

TEST(SingleProcess, AbortJobReturnsWithoutPeers) {
  abort_job(1);  // main() then exits with its own status
  EXPECT_FALSE(mpi_active());
}

// Every backend: a second group in the same process is refused (it would MPI_Init twice).
TEST(AnyBackend, OneGroupPerProcess) { EXPECT_THROW(init_process_group(), Error); }

}  // namespace
}  // namespace zo2::test
