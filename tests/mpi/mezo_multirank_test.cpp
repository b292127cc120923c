// Multi-rank MeZO on a tiny random OPT, with the process group the binary was started with: the CPU
// over MPI (ctest mpi_np2, mpi_np3, mpi_np4_grid) or one GPU per rank over NCCL (nccl_np2, label gpu).
// The references are computed on every rank by the same engine in one process (SingleProcess) from
// the union of the shards and all directions -- no collective is involved in them.
//
// Tolerances (fp32 weights and compute). A data-parallel step averages per-rank mean losses; the
// one-process reference takes the token-weighted mean of the union batch. Every example has the same
// length, so both are the same number in exact arithmetic and differ only by the summation order of
// the fp32 token losses: relative 2e-6 on losses (about 16 ulp), hence 2e-6 * |L| / eps on each
// projected gradient g = (L+ - L-) / (2 eps), and on weights lr * steps * that * max|z| (|z| < 6) plus
// one fp32 ulp per step -- while the update itself moves weights by about 1e-2, so a wrong average
// (sum, or the wrong shard) fails by orders of magnitude. Perturbation parallel with one data shard
// runs exactly the reference's arithmetic on each direction: equality is required bitwise on the CPU
// (on a GPU the reference's forward has 2P branches where a rank's has 2, and cuBLAS may choose other
// kernels for them, so there the D > 1 tolerances apply and the output says whether the bits agree).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/host_memory.h"
#include "common/test_util.h"
#include "data/example.h"
#include "model/param_source.h"
#include "mpi/mpi_test_env.h"
#include "offload/offload_model.h"
#include "train/trainer.h"
#include "zo/init.h"
#include "zo/mezo.h"

namespace zo2::test {
namespace {

constexpr float kEps = 1e-2f;
constexpr double kLr = 1e-2;
constexpr double kLossRel = 2e-6;
constexpr double kMaxZ = 6;

// nccl: this rank's GPU; mpi: the CPU (also on a GPU machine, where ranks may outnumber GPUs).
at::Device test_device() {
  return group().backend() == Backend::Nccl ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(group().device()))
                                            : at::Device(at::kCPU);
}

OptConfig tiny(int64_t layers = 4, int64_t hidden = 16, int64_t ffn = 32) {
  OptConfig c;
  c.name = "multirank-test";
  c.vocab_size = 48;
  c.hidden = hidden;
  c.layers = layers;
  c.heads = 2;
  c.ffn = ffn;
  c.max_positions = 32;
  c.word_embed_dim = hidden;
  return c;
}

// `n` language-modelling examples of `len` tokens each, the same on every rank.
std::vector<Example> pool(const OptConfig& c, int64_t n, int64_t len = 10) {
  at::Generator g = at::detail::createCPUGenerator(77);
  std::vector<Example> ex(n);
  for (int64_t i = 0; i < n; ++i) {
    at::Tensor ids = at::randint(3, c.vocab_size, {len}, g, at::TensorOptions().dtype(at::kLong));
    ids[0] = 2;  // BOS
    ex[i].candidates.push_back({std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + len), 1});
  }
  return ex;
}

Batch batch_of(const std::vector<Example>& ex, int64_t begin, int64_t count) {
  std::vector<const Example*> p;
  for (int64_t i = begin; i < begin + count; ++i) p.push_back(&ex[i % ex.size()]);
  BatchOptions bo;
  bo.pad_multiple = 1;
  return make_batch(p, bo).to(test_device());
}

MezoOptions options(int64_t q, int64_t groups) {
  MezoOptions mo;
  mo.seed = 1234;
  mo.q = q;
  mo.eps = kEps;
  mo.perturbation_groups = groups;
  return mo;
}

// All parameters as one float64 CPU vector.
at::Tensor flat(ResidentModel& m) {
  std::vector<at::Tensor> parts;
  for_each_param(m.config(), m.weights(),
                 [&](const ParamInfo&, at::Tensor& t) { parts.push_back(t.detach().to(at::kCPU, at::kDouble).reshape(-1)); });
  return at::cat(parts);
}

struct Trace {
  std::vector<double> plus, minus, grads;  // every step's, concatenated
  std::vector<uint64_t> sums;
};

// `steps` steps; batches(step) gives this rank's micro-batches.
Trace run(ZoModel& m, Collectives& comm, const MezoOptions& mo, int64_t steps,
          const std::function<std::vector<Batch>(int64_t)>& batches) {
  MezoEngine engine(m, comm, mo, at::kFloat);
  Trace t;
  for (int64_t s = 0; s < steps; ++s) {
    StepStats st = engine.step(s, batches(s), kLr);
    t.plus.insert(t.plus.end(), st.loss_plus.begin(), st.loss_plus.end());
    t.minus.insert(t.minus.end(), st.loss_minus.begin(), st.loss_minus.end());
    t.grads.insert(t.grads.end(), st.grads.begin(), st.grads.end());
  }
  engine.flush();
  t.sums = m.checksums();
  return t;
}

ResidentModel resident(const OptConfig& c) { return ResidentModel(c, random_weights(c, at::kFloat, test_device(), 17)); }

double max_rel(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]) / std::abs(b[i]));
  return m;
}

double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

bool same_on_every_rank(const std::vector<uint64_t>& mine) {
  ProcessGroup& pg = group();
  const int n = static_cast<int>(mine.size());
  std::vector<uint64_t> all(static_cast<size_t>(n) * pg.world());
  pg.allgather_u64(mine.data(), n, all.data());
  for (int r = 1; r < pg.world(); ++r)
    if (!std::equal(mine.begin(), mine.end(), all.begin() + static_cast<size_t>(r) * n)) return false;
  return true;
}

// ---------------------------------------------------------------- replicas

TEST(MezoMultiRank, ReplicasStayBitwiseIdenticalAndADifferingBlockIsNamed) {
  ProcessGroup& pg = group();
  const OptConfig c = tiny();
  const std::vector<Example> data = pool(c, 64);
  for (int64_t groups : {int64_t(1), int64_t(pg.world())}) {
    ResidentModel m = resident(c);
    const int64_t shard = pg.rank() / groups;  // each data shard its own examples
    run(m, pg, options(1, groups), 4, [&](int64_t s) { return std::vector<Batch>{batch_of(data, (s * 8 + shard) * 2, 2)}; });
    EXPECT_TRUE(same_on_every_rank(m.checksums())) << "P = " << groups;
    EXPECT_NO_THROW(check_replicas(m, pg, 3)) << "P = " << groups;
  }
  // One rank's block 1 off by one ulp in one element: every rank throws, naming rank and block.
  ResidentModel m = resident(c);
  const int bad = pg.world() - 1;
  if (pg.rank() == bad) {
    at::Tensor w = m.weights().blocks[1].fc1_w;
    at::Tensor cpu = w.to(at::kCPU);
    cpu.view(-1)[5].fill_(std::nextafter(cpu.view(-1)[5].item<float>(), 1e9f));
    w.copy_(cpu);
  }
  try {
    check_replicas(m, pg, 7);
    ADD_FAILURE() << "no error for a replica whose block 1 differs";
  } catch (const Error& e) {
    const std::string want = "replicas diverged after step 7: rank " + std::to_string(bad) + " differs from rank 0 in block 1";
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
  }
  ResidentModel m2 = resident(c);
  if (pg.rank() == bad) m2.weights().outer.final_ln_b.add_(1e-3);
  try {
    check_replicas(m2, pg, 8);
    ADD_FAILURE() << "no error for a replica whose final LayerNorm differs";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("in the embeddings/final LayerNorm/head"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- grid = one process

// P perturbation groups x D = W / P data shards (rank r: directions of group r % P, shard r / P) equals
// one process with q = P directions (ids 0..P-1) on the union of the D shards. Every P dividing W: on
// 2 ranks P = 1 (data parallel) and 2 (perturbation parallel); on 3 ranks 1 and 3 (3 has no other
// divisor, so no mixed grid); on 4 ranks also the mixed grid P = 2 x D = 2.
TEST(MezoMultiRank, GridEqualsOneProcessWithTheUnionBatchAndAllDirections) {
  ProcessGroup& pg = group();
  const OptConfig c = tiny();
  const int64_t W = pg.world(), B = 2, steps = 3;
  const std::vector<Example> data = pool(c, 64);
  for (int64_t P = 1; P <= W; ++P) {
    if (W % P != 0) continue;
    const int64_t D = W / P, shard = pg.rank() / P;
    SCOPED_TRACE("P = " + std::to_string(P) + ", D = " + std::to_string(D));
    ResidentModel multi = resident(c);
    const at::Tensor start = flat(multi);
    const Trace got = run(multi, pg, options(1, P), steps,
                          [&](int64_t s) { return std::vector<Batch>{batch_of(data, (s * D + shard) * B, B)}; });
    ResidentModel one = resident(c);
    SingleProcess solo;
    const Trace ref = run(one, solo, options(P, 1), steps,
                          [&](int64_t s) { return std::vector<Batch>{batch_of(data, s * D * B, D * B)}; });
    ASSERT_EQ(got.plus.size(), static_cast<size_t>(steps * P));
    ASSERT_EQ(ref.plus.size(), got.plus.size());
    const double moved = max_abs(flat(one), start);
    const bool bitwise = got.plus == ref.plus && got.minus == ref.minus && got.grads == ref.grads && got.sums == ref.sums;
    if (D == 1 && pg.rank() == 0)
      std::printf("[grid P=%lld D=1] %s to one process with q = %lld\n", static_cast<long long>(P),
                  bitwise ? "bitwise equal" : "NOT bitwise equal", static_cast<long long>(P));
    if (D == 1 && !test_device().is_cuda()) {
      EXPECT_TRUE(bitwise);  // the same CPU kernels on the same rows
    } else {  // GPU: cuBLAS may pick other kernels for 2 P branches than for 2; fp tolerance as for D > 1
      double L = 0;
      for (double x : ref.plus) L = std::max(L, std::abs(x));
      const double g_tol = 2 * kLossRel * L / (2 * kEps);
      const double w_tol = kLr * steps * g_tol * kMaxZ + steps * 2e-7 * (max_abs(flat(one), at::zeros_like(start)) + 1);
      const double dl = std::max(max_rel(got.plus, ref.plus), max_rel(got.minus, ref.minus));
      const double dg = max_diff(got.grads, ref.grads), dw = max_abs(flat(multi), flat(one));
      EXPECT_LE(dl, kLossRel);
      EXPECT_LE(dg, g_tol);
      EXPECT_LE(dw, w_tol);
      EXPECT_GT(moved, 100 * w_tol) << "the update is too small for the comparison to mean anything";
      if (pg.rank() == 0)
        std::printf("[grid P=%lld D=%lld] max rel loss diff %.3g (tol %.1g), max |dg| %.3g (tol %.3g), max |dw| %.3g "
                    "(tol %.3g, update %.3g)\n",
                    static_cast<long long>(P), static_cast<long long>(D), dl, kLossRel, dg, g_tol, dw, w_tol, moved);
    }
    EXPECT_TRUE(same_on_every_rank(got.sums));
  }
}

// ---------------------------------------------------------------- the trainer's sharding and bytes

// train() on W ranks with B examples each (data parallel) equals train() in one process with W x B:
// the shards of a step are consecutive runs of the same shuffled stream. Checks the per-step bytes in
// the metrics (rank 0) and the checksum records.
TEST(MezoMultiRank, TrainerShardsLikeOneProcessWithTheUnionBatchAndReportsBytes) {
  ProcessGroup& pg = group();
  const OptConfig c = tiny();
  const int64_t W = pg.world(), B = 2, steps = 4;
  const std::vector<Example> data = pool(c, 24);
  TrainOptions to;
  to.steps = steps;
  to.batch.pad_multiple = 1;
  to.lr.base = kLr;
  to.lr.total = steps;
  to.data_seed = 5;
  to.progress = false;
  to.checksum_every = 2;
  std::vector<StepStats> got, ref;
  const std::string metrics = pg.rank() == 0 ? temp_dir("multirank-trainer") + "/metrics.jsonl" : "";

  ResidentModel multi = resident(c);
  {
    MezoEngine engine(multi, pg, options(1, 1), at::kFloat);
    TrainOptions o = to;
    o.batch_size = B;
    o.metrics_path = metrics;
    train(engine, multi, data, {}, o, pg, at::kFloat, [&](const StepStats& s) { got.push_back(s); });
  }
  ResidentModel one = resident(c);
  {
    SingleProcess solo;
    MezoEngine engine(one, solo, options(1, 1), at::kFloat);
    TrainOptions o = to;
    o.batch_size = W * B;
    train(engine, one, data, {}, o, solo, at::kFloat, [&](const StepStats& s) { ref.push_back(s); });
  }
  ASSERT_EQ(got.size(), ref.size());
  double L = 0;
  for (const StepStats& s : ref) L = std::max(L, std::abs(s.loss_plus[0]));
  for (size_t s = 0; s < got.size(); ++s) {
    EXPECT_NEAR(got[s].loss_plus[0], ref[s].loss_plus[0], kLossRel * L) << "step " << s;
    EXPECT_NEAR(got[s].loss_minus[0], ref[s].loss_minus[0], kLossRel * L) << "step " << s;
    EXPECT_NEAR(got[s].grads[0], ref[s].grads[0], 2 * kLossRel * L / (2 * kEps)) << "step " << s;
  }
  const double g_tol = 2 * kLossRel * L / (2 * kEps);
  EXPECT_LE(max_abs(flat(multi), flat(one)), kLr * steps * g_tol * kMaxZ + 1e-6);
  EXPECT_TRUE(same_on_every_rank(multi.checksums()));

  if (pg.rank() == 0) {
    std::ifstream in(metrics);
    std::string line;
    int step_records = 0, checks = 0;
    while (std::getline(in, line)) {
      const nlohmann::json r = nlohmann::json::parse(line);
      if (r.contains("loss")) {
        ++step_records;
        // q = 1: the allgather of (L+, L-) is 16 B, the token count for tok/s 8 B; goal <= 64 B.
        EXPECT_EQ(r["bytes_sent"].get<uint64_t>(), 24u) << line;
      }
      if (r.contains("checksum_bytes")) {
        ++checks;
        EXPECT_EQ(r["checksum_bytes"].get<uint64_t>(), 8u * (c.layers + 1)) << line;
        EXPECT_TRUE(r["replicas_identical"].get<bool>());
      }
    }
    EXPECT_EQ(step_records, steps);
    EXPECT_EQ(checks, steps / 2);
  }
}

TEST(MezoMultiRank, AStepSendsTwoDoublesPerDirection) {
  ProcessGroup& pg = group();
  const OptConfig c = tiny();
  const std::vector<Example> data = pool(c, 8);
  for (int64_t q : {1, 2, 4}) {
    ResidentModel m = resident(c);
    MezoEngine engine(m, pg, options(q, 1), at::kFloat);
    for (int64_t s = 0; s < 2; ++s) {
      const uint64_t before = pg.bytes_sent();
      engine.step(s, {batch_of(data, 2 * pg.rank(), 2)}, kLr);
      const uint64_t sent = pg.bytes_sent() - before;
      EXPECT_EQ(sent, 16u * q) << "q " << q;
      if (q == 1) {
        EXPECT_LE(sent, 64u);
      }
    }
  }
}

// ---------------------------------------------------------------- the node-shared host store

bool one_node() { return group().local_world() == group().world(); }

std::shared_ptr<NodeShare> make_share(const OptConfig& c, const std::vector<int64_t>& layers, double timeout_s,
                                      int64_t jitter_us) {
  ProcessGroup& pg = group();
  NodeShareOptions o;
  o.local_rank = pg.local_rank();
  o.local_world = pg.local_world();
  o.pin = test_device().is_cuda();
  o.timeout_s = timeout_s;
  o.jitter_us = jitter_us;
  return std::make_shared<NodeShare>(pg, o, layers, BlockLayout::make(c, at::kFloat).bytes);
}

// Every block streamed (prefetch 1), in a shared or a private store; each block written by its writer.
std::unique_ptr<OffloadModel> streamed(const OptConfig& c, bool share, int64_t jitter_us = 0) {
  std::vector<int64_t> all;
  for (int64_t l = 0; l < c.layers; ++l) all.push_back(l);
  const at::Device d = test_device();
  HostStore store(c, at::kFloat, all, d.is_cuda(), share ? make_share(c, all, 60, jitter_us) : nullptr);
  for (int64_t l = 0; l < c.layers; ++l)
    if (store.writer(l)) init_random_block(c, l, store.block(l), 17);
  if (share) group().barrier();
  return std::make_unique<OffloadModel>(c, random_outer(c, at::kFloat, d, 17), std::move(store), d,
                                        OffloadOptions{1, true, {}, false});
}

// Steps with two micro-batches (two write-back passes per block), a flush and evaluation passes (more
// on higher ranks) in the middle, each rank on its own data; random sleeps before every protocol step
// shake the order.
// Shared and private stores must give the same bits, and the ranks identical weights.
TEST(SharedHostStore, SameBitsAsPrivateCopiesUnderRandomDelays) {
  if (!one_node()) GTEST_SKIP() << "ranks on several hosts";
  ProcessGroup& pg = group();
  const OptConfig c = tiny(5);
  const std::vector<Example> data = pool(c, 64);
  auto batches = [&](int64_t s) {
    return std::vector<Batch>{batch_of(data, (s * pg.world() + pg.rank()) * 4, 2),
                              batch_of(data, (s * pg.world() + pg.rank()) * 4 + 2, 2)};
  };
  auto session = [&](ZoModel& m) {
    MezoEngine engine(m, pg, options(2, 1), at::kFloat);
    Trace t;
    for (int64_t s = 0; s < 5; ++s) {
      StepStats st = engine.step(s, batches(s), kLr);
      t.plus.insert(t.plus.end(), st.loss_plus.begin(), st.loss_plus.end());
      t.minus.insert(t.minus.end(), st.loss_minus.begin(), st.loss_minus.end());
      if (s == 2) {
        engine.flush();
        const std::vector<uint64_t> mid = m.checksums();
        t.sums.insert(t.sums.end(), mid.begin(), mid.end());
        PlainParams plain(at::kFloat);
        for (int e = 0; e <= pg.rank(); ++e)  // evaluation: rank r runs r + 1 read-only passes
          t.plus.push_back(m.branch_losses(plain, batches(s)[e % 2]).item<double>());
      }
    }
    engine.flush();
    const std::vector<uint64_t> end = m.checksums();
    t.sums.insert(t.sums.end(), end.begin(), end.end());
    return t;
  };
  auto shared = streamed(c, true, /*jitter_us=*/1500);
  const Trace a = session(*shared);
  EXPECT_NO_THROW(check_replicas(*shared, pg, 4));
  shared.reset();
  auto priv = streamed(c, false);
  const Trace b = session(*priv);
  EXPECT_EQ(a.plus, b.plus);
  EXPECT_EQ(a.minus, b.minus);
  EXPECT_EQ(a.sums, b.sums);
  EXPECT_TRUE(same_on_every_rank(a.sums));
}

// The ranks of the node hold one copy: each maps and touches the whole segment (its rss_shmem grows by
// it), the node's pss_shmem grows by it once, and no rank's private memory grows by it. A private store
// is measured the same way for comparison (CPU only: pinned private memory is accounted elsewhere).
TEST(SharedHostStore, OneCopyPerNode) {
  if (!one_node()) GTEST_SKIP() << "ranks on several hosts";
  ProcessGroup& pg = group();
  const OptConfig c = tiny(12, 128, 512);
  const std::vector<Example> data = pool(c, 16);
  const int64_t store_bytes = c.layers * BlockLayout::make(c, at::kFloat).bytes;
  auto measure = [&](bool share) {
    pg.barrier();
    const HostMemory before = host_memory();
    auto m = streamed(c, share);
    MezoEngine engine(*m, pg, options(1, 1), at::kFloat);
    engine.step(0, {batch_of(data, 2 * pg.rank(), 2)}, kLr);  // every block uploaded: its pages touched
    engine.step(1, {batch_of(data, 2 * pg.rank(), 2)}, kLr);  // ... and written back
    pg.barrier();
    const HostMemory after = host_memory();
    std::vector<double> d = {double(after.rss_anon - before.rss_anon), double(after.rss_shmem - before.rss_shmem),
                             double(after.pss_shmem - before.pss_shmem)};
    std::vector<double> all(3 * pg.world());
    pg.allgather(d.data(), 3, all.data());
    return all;
  };
  const std::vector<double> s = measure(true);
  const std::vector<double> p = measure(false);
  double pss_sum = 0;
  for (int r = 0; r < pg.world(); ++r) pss_sum += s[3 * r + 2];
  const double mb = 1 << 20;
  if (pg.rank() == 0) {
    std::printf("[host memory] store %.2f MiB; %d ranks on one node\n", store_bytes / mb, pg.world());
    for (int r = 0; r < pg.world(); ++r)
      std::printf("  rank %d: shared: rss_anon %+.2f MiB, rss_shmem %+.2f MiB, pss_shmem %+.2f MiB; "
                  "private: rss_anon %+.2f MiB, rss_shmem %+.2f MiB\n",
                  r, s[3 * r] / mb, s[3 * r + 1] / mb, s[3 * r + 2] / mb, p[3 * r] / mb, p[3 * r + 1] / mb);
    std::printf("  node: shared pss_shmem %+.2f MiB (one copy = %.2f MiB)\n", pss_sum / mb, store_bytes / mb);
  }
  EXPECT_NEAR(pss_sum, store_bytes, 0.05 * store_bytes + 512 * 1024.0);
  for (int r = 0; r < pg.world(); ++r) {
    EXPECT_GE(s[3 * r + 1], 0.95 * store_bytes) << "rank " << r << " has not touched the whole shared copy";
    EXPECT_LT(s[3 * r], 0.5 * store_bytes) << "rank " << r << " holds a private copy beside the shared one";
    if (!test_device().is_cuda()) {
      EXPECT_GT(p[3 * r], 0.9 * store_bytes) << "rank " << r << ": a private store should show as private memory";
    }
  }
}

// The protocol alone, with the races it must prevent provoked: owners that dawdle before writing (a
// reader without the upload wait would read the old version) and readers that read slowly (an owner
// without the write wait would overwrite a block while it is read), also in read-only passes whose
// number differs between ranks (as evaluation shards do). Block l holds version v as bytes of value
// v; every read must see the version it expects, whole. No collective between passes.
TEST(SharedHostStore, ProtocolOrdersEveryReadAfterItsWriteAndBeforeTheNext) {
  if (!one_node()) GTEST_SKIP() << "ranks on several hosts";
  ProcessGroup& pg = group();
  const int W = pg.local_world();
  const int64_t bytes = 64 * 1024, chunks = 8;
  std::vector<int64_t> layers;
  for (int64_t l = 0; l <= W; ++l) layers.push_back(l);  // every rank owns one, rank 0 two
  NodeShareOptions o;
  o.local_rank = pg.local_rank();
  o.local_world = W;
  o.timeout_s = 60;
  NodeShare share(pg, o, layers, bytes);
  const Queue cpu = Queue::current(at::kCPU);
  auto ptr = [&](int64_t l) { return share.buffer(l).data_ptr<uint8_t>(); };
  for (int64_t l : layers)
    if (share.owns(l)) std::memset(ptr(l), 0, bytes);
  pg.barrier();
  int64_t torn = 0, stale = 0;
  auto read = [&](int64_t l, int p, bool slow, bool write_pass) {
    share.before_upload(l);
    for (int64_t c = 0; c < chunks; ++c) {
      const uint8_t* at = ptr(l) + c * (bytes / chunks);
      for (int64_t i = 0; i < bytes / chunks; ++i)
        if (at[i] != static_cast<uint8_t>(p)) {
          (c == 0 ? stale : torn) += 1;
          break;
        }
      if (slow) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    share.after_upload(l, cpu, write_pass);
  };
  for (int p = 0; p < 12; ++p) {
    for (int e = 0; e < pg.local_rank(); ++e)  // read-only passes: local rank r runs r of them
      for (int64_t l : layers) read(l, p, !share.owns(l), false);
    for (int64_t l : layers) read(l, p, p % 2 == 1 && !share.owns(l), true);
    for (int64_t l : layers) {
      if (share.owns(l)) {
        share.before_writeback(l);
        if (p % 2 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(3));
        std::memset(ptr(l), p + 1, bytes);
      }
      share.after_writeback(l, cpu);
    }
  }
  EXPECT_EQ(stale, 0) << "reads of a version before its write";
  EXPECT_EQ(torn, 0) << "reads overwritten while they ran";
  pg.barrier();
}

// A block whose owner never writes it back: the reader's wait ends with an error naming the block
// within the timeout, instead of hanging. The segment's name is gone from /dev/shm once mapped.
TEST(SharedHostStore, AMissingWriteBackTimesOutNamingTheBlock) {
  if (!one_node()) GTEST_SKIP() << "ranks on several hosts";
  ProcessGroup& pg = group();
  const OptConfig c = tiny();
  std::vector<int64_t> all = {0, 1, 2, 3};
  std::shared_ptr<NodeShare> share = make_share(c, all, 0.5, 0);
  EXPECT_FALSE(std::filesystem::exists("/dev/shm" + share->name())) << share->name() << " left in /dev/shm";
  const int64_t layer = 0;  // owned by local rank 0
  if (!share->owns(layer)) {
    share->after_writeback(layer, Queue::current(at::kCPU));  // as if a write-back pass ran here ...
    try {
      share->before_upload(layer);  // ... but the owner never ran it
      ADD_FAILURE() << "no error although block 0 was never written back";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("block 0: the owner's write-back did not happen within 0.5 s"),
                std::string::npos)
          << e.what();
    }
  }
  pg.barrier();
}

}  // namespace
}  // namespace zo2::test
