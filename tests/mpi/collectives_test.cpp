// The process group's collectives on 2 and 3 ranks (ctest mpi_np2, mpi_np3; gpu: nccl_np2). Expected
// values are computed on each rank from closed forms of what every rank contributes, never from the
// collective under test. Integers and u64 must match exactly; sums of fractions to 1e-15 relative.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "comm/device.h"
#include "common/error.h"
#include "mpi/mpi_test_env.h"

namespace zo2::test {
namespace {

double frac(int r, int i) { return (r % 2 ? -1.0 : 1.0) / (3.0 + r + 7.0 * i) + (i == 1 ? 1e8 : 0.0); }
uint64_t big(int r, int i) { return 0xFFFFFFFFFFFFFF00ull - 7ull * r - i; }            // above 2^53
uint64_t odd53(int r, int i) { return (1ull << 53) + 1 + 2ull * (3 * r + i); }          // not a double

TEST(Collectives, Identity) {
  ProcessGroup& pg = group();
  EXPECT_GE(pg.world(), 2);
  EXPECT_GE(pg.rank(), 0);
  EXPECT_LT(pg.rank(), pg.world());
  if (const char* n = std::getenv("OMPI_COMM_WORLD_SIZE")) {
    EXPECT_EQ(pg.world(), std::atoi(n));
  }
  if (const char* r = std::getenv("OMPI_COMM_WORLD_RANK")) {
    EXPECT_EQ(pg.rank(), std::atoi(r));
  }
}

TEST(Collectives, AllreduceSumIntegersExact) {
  ProcessGroup& pg = group();
  const int n = 5, r = pg.rank();
  std::vector<double> v(n);
  for (int i = 0; i < n; ++i) v[i] = (r + 1) * (i + 1) + 1000.0 * r;
  pg.allreduce_sum(v.data(), n);
  const int w = pg.world();
  for (int i = 0; i < n; ++i) EXPECT_EQ(v[i], (i + 1) * w * (w + 1) / 2.0 + 1000.0 * w * (w - 1) / 2.0) << i;
}

TEST(Collectives, AllreduceSumFractionsSameBitsOnEveryRank) {
  ProcessGroup& pg = group();
  const int n = 3, w = pg.world();
  std::vector<double> v(n);
  for (int i = 0; i < n; ++i) v[i] = frac(pg.rank(), i);
  pg.allreduce_sum(v.data(), n);
  for (int i = 0; i < n; ++i) {
    double ref = 0, mag = 0;
    for (int r = 0; r < w; ++r) ref += frac(r, i), mag += std::fabs(frac(r, i));
    EXPECT_NEAR(v[i], ref, 1e-15 * mag) << i;
  }
  // Data-parallel MeZO needs the same projected gradient bits on every rank.
  std::vector<double> all(n * w);
  pg.allgather(v.data(), n, all.data());
  for (int r = 0; r < w; ++r) EXPECT_EQ(std::memcmp(&all[r * n], v.data(), n * sizeof(double)), 0) << "rank " << r;
}

TEST(Collectives, AllgatherLayout) {
  ProcessGroup& pg = group();
  const int n = 3, w = pg.world();
  std::vector<double> send(n), recv(n * w, -1);
  for (int i = 0; i < n; ++i) send[i] = 100.0 * pg.rank() + i + 0.5;
  pg.allgather(send.data(), n, recv.data());
  for (int r = 0; r < w; ++r)
    for (int i = 0; i < n; ++i) EXPECT_EQ(recv[r * n + i], 100.0 * r + i + 0.5) << r << "," << i;
}

TEST(Collectives, AllgatherU64Exact) {
  ProcessGroup& pg = group();
  const int n = 4, w = pg.world();
  std::vector<uint64_t> send(n), recv(n * w, 0);
  for (int i = 0; i < n; ++i) send[i] = i % 2 ? big(pg.rank(), i) : odd53(pg.rank(), i);
  pg.allgather_u64(send.data(), n, recv.data());
  for (int r = 0; r < w; ++r)
    for (int i = 0; i < n; ++i) EXPECT_EQ(recv[r * n + i], i % 2 ? big(r, i) : odd53(r, i)) << r << "," << i;
}

TEST(Collectives, BroadcastU64FromEveryRoot) {
  ProcessGroup& pg = group();
  const int n = 3;
  for (int root = 0; root < pg.world(); ++root) {
    std::vector<uint64_t> v(n);
    for (int i = 0; i < n; ++i) v[i] = pg.rank() == root ? big(root, i) : 12345 + pg.rank();
    pg.broadcast_u64(v.data(), n, root);
    for (int i = 0; i < n; ++i) EXPECT_EQ(v[i], big(root, i)) << "root " << root << ", " << i;
  }
}

// Rank r arrives r * 150 ms late; nobody may leave before the last one arrived. The times are
// CLOCK_MONOTONIC, shared by the processes of one host, so the test needs every rank on one node.
TEST(Collectives, BarrierHoldsEveryRankUntilTheLastArrives) {
  ProcessGroup& pg = group();
  if (pg.local_world() != pg.world()) GTEST_SKIP() << "ranks on several hosts";
  using namespace std::chrono;
  std::this_thread::sleep_for(milliseconds(150 * pg.rank()));
  const double enter = duration<double>(steady_clock::now().time_since_epoch()).count();
  pg.barrier();
  const double leave = duration<double>(steady_clock::now().time_since_epoch()).count();
  const int w = pg.world();
  std::vector<double> enters(w), leaves(w);
  pg.allgather(&enter, 1, enters.data());
  pg.allgather(&leave, 1, leaves.data());
  double last_enter = enters[0];
  for (double e : enters) last_enter = std::max(last_enter, e);
  for (int r = 0; r < w; ++r) EXPECT_GE(leaves[r], last_enter) << "rank " << r << " left the barrier early";
}

TEST(Collectives, BytesSentCountsPayloadThisRankContributes) {
  ProcessGroup& pg = group();
  const int w = pg.world(), root = w - 1;
  std::vector<double> d(2 + 2 * w);
  std::vector<uint64_t> u(4 + 4 * w);
  auto delta = [&](auto op) {
    const uint64_t before = pg.bytes_sent();
    op();
    return pg.bytes_sent() - before;
  };
  EXPECT_EQ(delta([&] { pg.allreduce_sum(d.data(), 3); }), 24u);
  EXPECT_EQ(delta([&] { pg.allreduce_sum(d.data(), 0); }), 0u);
  EXPECT_EQ(delta([&] { pg.allgather(d.data(), 2, d.data() + 2); }), 16u);
  EXPECT_EQ(delta([&] { pg.allgather_u64(u.data(), 4, u.data() + 4); }), 32u);
  EXPECT_EQ(delta([&] { pg.broadcast_u64(u.data(), 5, root); }), pg.rank() == root ? 40u : 0u);
  EXPECT_EQ(delta([&] { pg.barrier(); }), 0u);
}

TEST(Collectives, BadArgumentsThrowOnEveryRankWithoutCommunicating) {
  ProcessGroup& pg = group();
  uint64_t u = 0;
  double d = 0;
  EXPECT_THROW(pg.broadcast_u64(&u, 1, pg.world()), Error);
  EXPECT_THROW(pg.broadcast_u64(&u, 1, -1), Error);
  EXPECT_THROW(pg.allreduce_sum(&d, -1), Error);
  pg.barrier();  // still in step
}

TEST(ProcessGroupPlacement, LocalRankAndDevice) {
  ProcessGroup& pg = group();
  if (pg.local_world() != pg.world()) GTEST_SKIP() << "ranks on several hosts";
  EXPECT_EQ(pg.local_rank(), pg.rank());  // one node: local rank == rank under mpirun's default mapping
  EXPECT_STREQ(pg.local_rank_source(),
               local_rank_env_hidden() ? "MPI_Comm_split_type" : "OMPI_COMM_WORLD_LOCAL_RANK");
  const int devices = cuda_device_count();
  EXPECT_EQ(pg.device(), devices > 0 ? pg.local_rank() % devices : -1);
}

}  // namespace
}  // namespace zo2::test
