// The offload schedule against the resident model: streamed, partly resident, serial (--overlap off)
// and any prefetch depth give bitwise-identical losses and weights. On the CPU the copies are real
// memcpys between host buffers and slots, so a wrong slot or a missing write-back shows up.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/test_util.h"
#include "data/example.h"
#include "offload/block_file.h"
#include "common/low_bit_ref.h"
#include "offload/low_bit.h"
#include "offload/offload_model.h"
#include "offload/planner.h"
#include "zo/init.h"
#include "zo/mezo.h"

namespace zo2 {
namespace {

OptConfig config() {
  OptConfig c;
  c.name = "offload-test";
  c.vocab_size = 48;
  c.hidden = 16;
  c.layers = 5;
  c.heads = 2;
  c.ffn = 32;
  c.max_positions = 32;
  c.word_embed_dim = 16;
  return c;
}

std::vector<Batch> batches(const OptConfig& c) {
  std::vector<Batch> out;
  at::Generator g = at::detail::createCPUGenerator(3);
  for (int s = 0; s < 4; ++s) {
    std::vector<Example> ex(2);
    for (int i = 0; i < 2; ++i) {
      at::Tensor ids = at::randint(3, c.vocab_size, {6 + 3 * i + s}, g, at::TensorOptions().dtype(at::kLong));
      ex[i].candidates.push_back({std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel()), 1});
    }
    out.push_back(make_batch({&ex[0], &ex[1]}, BatchOptions{}));
  }
  return out;
}

struct RunResult {
  std::vector<double> losses;
  std::vector<uint64_t> checksums;
};

RunResult run(ZoModel& model, at::ScalarType dtype, int64_t q) {
  SingleProcess comm;
  MezoOptions mo;
  mo.seed = 9;
  mo.q = q;
  mo.eps = 1e-2f;
  mo.weight_decay = 0.05f;
  MezoEngine engine(model, comm, mo, dtype);
  RunResult r;
  int64_t step = 0;
  for (const Batch& b : batches(model.config())) {
    StepStats st = engine.step(step++, {b}, 1e-2);
    r.losses.insert(r.losses.end(), st.loss_plus.begin(), st.loss_plus.end());
    r.losses.insert(r.losses.end(), st.loss_minus.begin(), st.loss_minus.end());
  }
  engine.flush();
  r.checksums = model.checksums();
  return r;
}

std::unique_ptr<OffloadModel> offloaded(const OptConfig& c, at::ScalarType dtype, OffloadOptions opt,
                                        std::shared_ptr<BlockFile> file = nullptr) {
  std::vector<int64_t> all;
  for (int64_t l = 0; l < c.layers; ++l) all.push_back(l);
  HostStore store(c, dtype, all, /*pinned=*/false, nullptr, std::move(file));
  for (int64_t l = 0; l < c.layers; ++l) init_random_block(c, l, store.block(l), 17);
  return std::make_unique<OffloadModel>(c, random_outer(c, dtype, at::kCPU, 17), std::move(store), at::kCPU, opt);
}

TEST(Offload, StreamedResidentAndSerialSchedulesAreBitwiseIdentical) {
  const OptConfig c = config();
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    for (int64_t q : {1, 2}) {
      ResidentModel resident(c, random_weights(c, dt, at::kCPU, 17));
      const RunResult ref = run(resident, at::kFloat, q);
      struct Variant {
        const char* name;
        OffloadOptions opt;
      };
      std::vector<Variant> variants = {
          {"all streamed", {1, true, {}, false}},
          {"serial", {1, false, {}, false}},
          {"prefetch 0", {0, true, {}, false}},
          {"prefetch 3", {3, true, {}, false}},
          {"layers 1 and 3 resident", {1, true, {1, 3}, false}},
          {"all resident", {1, true, {0, 1, 2, 3, 4}, false}},
          {"write back every 3rd update", {1, true, {}, false, 3}},
          {"write back every 2nd, layer 2 resident, serial", {2, false, {2}, false, 2}},
      };
      for (const Variant& v : variants) {
        auto m = offloaded(c, dt, v.opt);
        const RunResult got = run(*m, at::kFloat, q);
        EXPECT_EQ(got.losses, ref.losses) << v.name << ", dtype " << dt << ", q " << q;
        EXPECT_EQ(got.checksums, ref.checksums) << v.name << ", dtype " << dt << ", q " << q;
      }
    }
  }
}

// The disk tier: blocks in a memory-mapped scratch file give the bits of the RAM store; the file is
// unlinked at once; bad directories are refused by name.
TEST(Offload, DiskTierIsBitwiseTheHostStore) {
  namespace fs = std::filesystem;
  const OptConfig c = config();
  const std::string dir = test::temp_dir("offload_disk");
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    ResidentModel resident(c, random_weights(c, dt, at::kCPU, 17));
    const RunResult ref = run(resident, at::kFloat, 2);
    for (int64_t every : {1, 3}) {
      OffloadOptions oo{1, true, {2}, false, every};
      auto file = std::make_shared<BlockFile>(dir, c.layers, BlockLayout::make(c, dt).bytes);
      EXPECT_EQ(file->bytes(), c.layers * BlockLayout::make(c, dt).bytes);
      EXPECT_TRUE(fs::is_empty(dir)) << "the scratch file should be unlinked once mapped";
      auto m = offloaded(c, dt, oo, file);
      const RunResult got = run(*m, at::kFloat, 2);
      EXPECT_EQ(got.losses, ref.losses) << "dtype " << dt << ", write back every " << every;
      EXPECT_EQ(got.checksums, ref.checksums) << "dtype " << dt << ", write back every " << every;
    }
  }
  test::expect_error([&] { BlockFile(dir + "/missing", 2, 64); }, {dir + "/missing", "not a directory"});
  const DiskRates r = measure_disk_gbps(dir, 8 << 20);
  EXPECT_GT(r.read_gbps, 0);
  EXPECT_GT(r.write_gbps, 0);
  EXPECT_TRUE(fs::is_empty(dir));
}

// Low-bit reads: training passes stay bitwise exact; a read pass computes with the int8 copies of the
// current weights (made again after every change, also when host copies lag), moving fewer bytes.
TEST(Offload, LowBitReadsUseFreshInt8CopiesAndLeaveTrainingExact) {
  const OptConfig c = config();
  const Batch b = batches(c)[0];
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    ResidentModel resident(c, random_weights(c, dt, at::kCPU, 17));
    OffloadOptions oo{1, true, {2}, false, 3};
    oo.low_bit_reads = true;
    auto m = offloaded(c, dt, oo);
    PlainParams plain(at::kFloat);
    for (int round = 0; round < 2; ++round) {  // before and after training
      if (round == 1) {
        const RunResult ref = run(resident, at::kFloat, 1), got = run(*m, at::kFloat, 1);
        EXPECT_EQ(got.losses, ref.losses) << "training changed by low-bit reads, dtype " << dt;
        EXPECT_EQ(got.checksums, ref.checksums) << "dtype " << dt;
      }
      ResidentModel quantized(c, test::low_bit_copy(c, resident.weights(), /*keep=resident layer*/ 2));
      m->reset_times();
      const at::Tensor low = m->logprobs(plain, b);
      const at::Tensor want = quantized.logprobs(plain, b), exact = resident.logprobs(plain, b);
      EXPECT_TRUE(at::equal(low, want)) << "round " << round << ", dtype " << dt;
      EXPECT_FALSE(at::equal(low, exact)) << "no quantization happened";
      EXPECT_LT(test::rel_l2(low, exact), 2e-2) << "round " << round << ", dtype " << dt;
      const int64_t low_bytes = LowBitLayout::make(BlockLayout::make(c, dt)).bytes;
      EXPECT_EQ(m->times().uploaded_bytes, (c.layers - 1) * low_bytes);
    }
  }
}

// Each row: scale = max |w| / 127, every value within half a step of w, int8 in [-127, 127].
TEST(LowBit, QuantizesEachRowToWithinHalfAStep) {
  // A real block moves about half (16-bit storage) or a quarter (fp32) of its bytes.
  OptConfig big = config();
  big.hidden = 2048;
  big.ffn = 8192;
  big.heads = 32;
  for (at::ScalarType dt : {at::kFloat, at::kHalf}) {
    const BlockLayout bl = BlockLayout::make(big, dt);
    const double ratio = static_cast<double>(LowBitLayout::make(bl).bytes) / static_cast<double>(bl.bytes);
    EXPECT_NEAR(ratio, dt == at::kFloat ? 0.25 : 0.5, 0.01) << c10::toString(dt);
  }
  const OptConfig c = config();
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    const OptWeights w = random_weights(c, dt, at::kCPU, 5);
    const OptWeights q = test::low_bit_copy(c, w);
    for (int s = 0; s < BlockWeights::kSlots; ++s) {
      const at::Tensor a = w.blocks[1].slot(s).to(at::kDouble), b = q.blocks[1].slot(s).to(at::kDouble);
      if (a.dim() != 2) {
        EXPECT_TRUE(at::equal(w.blocks[1].slot(s), q.blocks[1].slot(s))) << "slot " << s << " should travel as stored";
        continue;
      }
      const at::Tensor step = a.abs().amax(1, true) / 127.0;
      // half a step, plus the rounding of the product to the storage dtype
      const double ulp = dt == at::kFloat ? 1.2e-7 : 7.9e-3;
      EXPECT_TRUE(((b - a).abs() <= step * 0.5 + a.abs() * ulp + 1e-12).all().item<bool>()) << "slot " << s;
      if (dt == at::kFloat) {  // fp32 keeps q * scale: whole steps of the row's scale
        const at::Tensor k = b / step.clamp_min(1e-30);
        EXPECT_LT((k - k.round()).abs().max().item<double>(), 1e-4) << "slot " << s;
        EXPECT_LE(k.abs().max().item<double>(), 127.0 + 1e-4) << "slot " << s;
      }
    }
  }
}

TEST(Offload, WeightsActuallyChangeAndSlotsAreBounded) {
  const OptConfig c = config();
  auto m = offloaded(c, at::kFloat, {1, true, {}, false});
  EXPECT_EQ(m->slots(), 3);
  const std::vector<uint64_t> before = m->checksums();
  run(*m, at::kFloat, 1);
  const std::vector<uint64_t> after = m->checksums();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_NE(before[i], after[i]) << "block " << i << " not updated";
}

TEST(Planner, SpreadsResidentBlocksAndRespectsTheBudget) {
  EXPECT_EQ(spread_layers(8, 2), (std::vector<int64_t>{2, 6}));
  EXPECT_EQ(spread_layers(5, 5), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_TRUE(spread_layers(5, 0).empty());
  OptConfig c;
  c.name = "opt-13b";
  c.hidden = 5120;
  c.layers = 40;
  c.heads = 40;
  c.ffn = 20480;
  c.word_embed_dim = 5120;
  PlanInput in;
  in.cfg = c;
  in.budget_gb = 20;
  Plan p = make_plan(in);
  EXPECT_LE(p.gpu_bytes, 20e9);
  EXPECT_GT(p.resident.size(), 0u);
  EXPECT_EQ(p.streamed + static_cast<int64_t>(p.resident.size()), c.layers);
  in.stream_all = true;
  Plan s = make_plan(in);
  EXPECT_EQ(s.streamed, c.layers);
  EXPECT_EQ(s.slots, 3);
  // 13B fp16 blocks: 40 x 12 H^2 x 2 bytes = 25.2 GB streamed; at 55 GB/s that is ~458 ms.
  EXPECT_NEAR(s.transfer_ms, 458, 10);
  // A slower device-to-host link bounds the step only for the blocks written back: all of them at
  // --writeback-every 1, a quarter at 4 (41.6 GB/s D2H as measured once on an H100).
  in.d2h_gbps = 41.6;
  EXPECT_NEAR(make_plan(in).transfer_ms, s.block_bytes * 40 / 41.6e6, 1e-6);
  EXPECT_EQ(make_plan(in).transfer_link, Plan::Link::kD2H);
  in.writeback_every = 4;
  EXPECT_NEAR(make_plan(in).transfer_ms, s.transfer_ms, 1e-9);
  EXPECT_EQ(make_plan(in).transfer_link, Plan::Link::kH2D);
  in.writeback_every = 0;
  EXPECT_THROW(make_plan(in), Error);
  in.writeback_every = 1;
  in.d2h_gbps = 55.0;

  // Copies written ahead: planned (two copies of fc1, 20480 x 5120 fp16) only when no block streams.
  in.stream_all = false;
  in.lookahead = true;
  EXPECT_FALSE(make_plan(in).lookahead) << "20 GB streams blocks";
  in.budget_gb = 70;
  in.lookahead = false;
  const Plan without = make_plan(in);
  in.lookahead = true;
  const Plan with = make_plan(in);
  EXPECT_EQ(with.streamed, 0);
  EXPECT_TRUE(with.lookahead);
  EXPECT_FALSE(without.lookahead);
  EXPECT_DOUBLE_EQ(with.gpu_bytes - without.gpu_bytes, 2.0 * 20480 * 5120 * 2);
  // A budget that every block fits only without the extra copies: they give way to the blocks.
  in.budget_gb = (without.gpu_bytes + 1e8) / 1e9;
  const Plan tight = make_plan(in);
  EXPECT_FALSE(tight.lookahead);
  EXPECT_EQ(tight.streamed, 0);
}

// OPT-175B under 16 GB: three slots of 3.6 GB blocks do not fit, two do: the planner lowers the
// prefetch depth rather than fail; a budget below even that is reported as not fitting.
TEST(Planner, LowersThePrefetchDepthToFitATightBudget) {
  OptConfig c;
  c.name = "opt-175b";
  c.hidden = 12288;
  c.layers = 96;
  c.heads = 96;
  c.ffn = 49152;
  c.word_embed_dim = 12288;
  PlanInput in;
  in.cfg = c;
  in.stream_all = true;
  const Plan loose = make_plan(in);
  EXPECT_EQ(loose.prefetch, 1);
  EXPECT_EQ(loose.slots, 3);
  in.budget_gb = 16;
  const Plan p = make_plan(in);
  EXPECT_TRUE(p.fits);
  EXPECT_EQ(p.prefetch, 0);
  EXPECT_EQ(p.slots, 2);
  EXPECT_LE(p.gpu_bytes, 16e9);
  EXPECT_NEAR(loose.gpu_bytes - p.gpu_bytes, static_cast<double>(p.block_bytes), 1.0);
  EXPECT_NE(format_plan(in, p).find("prefetch lowered from 1 to 0"), std::string::npos);
  in.budget_gb = 10;
  EXPECT_FALSE(make_plan(in).fits);

  // The disk tier: the 96 blocks leave host RAM for the file; two pinned staging blocks per slot stay,
  // and the step cannot be faster than reading every block from the disk.
  in.budget_gb = 16;
  in.disk_gbps = 2.0;
  const Plan d = make_plan(in);
  EXPECT_EQ(d.gpu_bytes, p.gpu_bytes);
  EXPECT_NEAR(d.host_bytes, 2.0 * d.slots * d.block_bytes, 1.0);
  EXPECT_NEAR(d.disk_bytes, 96.0 * d.block_bytes, 1.0);
  EXPECT_NEAR(d.transfer_ms, d.disk_bytes / 2e9 * 1e3, 1e-6);
  EXPECT_NE(format_plan(in, d).find("disk tier:"), std::string::npos);
}

}  // namespace
}  // namespace zo2
