// The trajectory log (format, damage handling) and replay: the base weights plus the log give the
// trained weights bitwise (f32, and bf16 with stochastic rounding; resident and streamed models).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "common/test_util.h"
#include "train/trajectory.h"
#include "unit/test_checkpoint_util.h"
#include "zo/init.h"

namespace zo2 {
namespace {

using test::expect_error;

TrajectoryHeader make_header(int64_t q, at::ScalarType storage) {
  TrajectoryHeader h;
  h.mezo.seed = 77;
  h.mezo.q = q;
  h.mezo.eps = 1e-2f;
  h.mezo.weight_decay = 0.05f;
  h.storage = storage;
  h.cfg = test::ckpt_config();
  h.base = "preset:test:17";
  h.base_checksum = 0x0123456789abcdefull;
  h.run = {{"data_seed", 5}, {"lr", 1e-3}};
  return h;
}

TrajectoryRecord make_record(int64_t step, int64_t dirs) {
  TrajectoryRecord r;
  r.step = step;
  r.lr = 1e-3f * static_cast<float>(step + 1);
  r.loss = 2.5f - 0.1f * static_cast<float>(step);
  for (int64_t d = 0; d < dirs; ++d) r.g.push_back(std::ldexp(1.0 + step, -static_cast<int>(d)) - 0.3);
  return r;
}

// A log with `n` records at a fresh path.
std::string write_log(const TrajectoryHeader& h, int n, int64_t sync_every = 1) {
  const std::string path = test::temp_dir("traj") + "/trajectory.zo2traj";
  TrajectoryWriter::create(path, h);
  TrajectoryWriter w(path, h, 0, sync_every);
  for (int s = 0; s < n; ++s) w.append(make_record(s, h.dirs()));
  return path;
}

TEST(Trajectory, RecordIs32BytesForQ1AndGrowsBy8PerDirection) {
  EXPECT_EQ(trajectory_record_bytes(1), 32);
  EXPECT_EQ(trajectory_record_bytes(4), 56);
  for (int64_t q : {1, 3}) {
    const TrajectoryHeader h = make_header(q, at::kFloat);
    const std::string path = write_log(h, 0);
    const auto header = std::filesystem::file_size(path);
    EXPECT_EQ(header % 8, 0u) << "records start 8-byte aligned";
    TrajectoryWriter w(path, h, 0, 1);
    for (int s = 0; s < 5; ++s) {
      w.append(make_record(s, h.dirs()));
      EXPECT_EQ(std::filesystem::file_size(path), header + (s + 1) * trajectory_record_bytes(q)) << "q " << q;
    }
  }
}

TEST(Trajectory, HeaderAndRecordsRoundTrip) {
  TrajectoryHeader h = make_header(2, at::kBFloat16);
  h.mezo.perturbation_groups = 2;
  h.mezo.stochastic_round = false;
  const std::string path = write_log(h, 0);
  {
    TrajectoryWriter w(path, h, 0, 3);
    for (int s = 0; s < 4; ++s) w.append(make_record(s, h.dirs()));
    TrajectoryRecord bad = make_record(4, h.dirs());
    bad.g[1] = std::numeric_limits<double>::quiet_NaN();
    bad.skipped = true;
    w.append(bad);
  }
  const TrajectoryLog log = read_trajectory(path);
  EXPECT_EQ(trajectory_mismatch(log.header, h, /*with_base=*/true), "");
  EXPECT_EQ(log.header.base, h.base);
  EXPECT_EQ(log.header.dirs(), 4);
  EXPECT_EQ(trajectory_id(log.header), trajectory_id(h));
  EXPECT_TRUE(log.dropped.empty());
  ASSERT_EQ(log.records.size(), 5u);
  for (int s = 0; s < 4; ++s) {
    const TrajectoryRecord want = make_record(s, 4);
    EXPECT_EQ(log.records[s].step, s);
    EXPECT_EQ(log.records[s].lr, want.lr);
    EXPECT_EQ(log.records[s].loss, want.loss);
    EXPECT_EQ(log.records[s].g, want.g);
    EXPECT_FALSE(log.records[s].skipped);
  }
  EXPECT_TRUE(log.records[4].skipped);
  EXPECT_TRUE(std::isnan(log.records[4].g[1]));
}

TEST(Trajectory, MismatchNamesTheField) {
  const TrajectoryHeader a = make_header(1, at::kFloat);
  TrajectoryHeader b = a;
  b.mezo.eps = 2e-2f;
  b.run["lr"] = 2e-3;
  b.cfg.layers = 4;
  b.base_checksum = 1;
  b.base = "elsewhere";
  const std::string d = trajectory_mismatch(a, b, false);
  EXPECT_NE(d.find("eps"), std::string::npos) << d;
  EXPECT_NE(d.find("lr"), std::string::npos) << d;
  EXPECT_NE(d.find("num_hidden_layers"), std::string::npos) << d;
  EXPECT_EQ(d.find("base"), std::string::npos) << d;
  EXPECT_NE(trajectory_mismatch(a, b, true).find("base_checksum"), std::string::npos);
}

TEST(Trajectory, TornLastRecordIsDroppedReportedAndCutOnAppend) {
  const TrajectoryHeader h = make_header(1, at::kFloat);
  const std::string path = write_log(h, 6);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 5);  // killed inside the write
  TrajectoryLog log = read_trajectory(path);
  EXPECT_EQ(log.records.size(), 5u);
  EXPECT_NE(log.dropped.find("torn record after step 4"), std::string::npos) << log.dropped;
  {
    TrajectoryWriter w(path, h, 5, 1);  // resume: cut the torn bytes, append step 5 again
    w.append(make_record(5, 1));
  }
  log = read_trajectory(path);
  EXPECT_EQ(log.records.size(), 6u);
  EXPECT_TRUE(log.dropped.empty()) << log.dropped;
}

TEST(Trajectory, CorruptLastRecordIsDropped) {
  const TrajectoryHeader h = make_header(1, at::kFloat);
  const std::string path = write_log(h, 4);
  std::string bytes = test::read_bytes(path);
  bytes[bytes.size() - 10] ^= 0x01;
  test::write_bytes(path, bytes);
  const TrajectoryLog log = read_trajectory(path);
  EXPECT_EQ(log.records.size(), 3u);
  EXPECT_NE(log.dropped.find("step 3"), std::string::npos) << log.dropped;
}

TEST(Trajectory, DamageBeforeTheEndIsRefusedNamingFileAndStep) {
  const TrajectoryHeader h = make_header(1, at::kFloat);
  const std::string path = write_log(h, 6);
  const std::string good = test::read_bytes(path);
  const size_t header = good.size() - 6 * 32;
  std::string bytes = good;
  bytes[header + 2 * 32 + 17] ^= 0x40;  // a bit of step 2's g
  test::write_bytes(path, bytes);
  expect_error([&] { read_trajectory(path); }, {path, "step 2", "CRC", "corrupt"});
  // A record of the wrong step (with a valid CRC) in the middle: records swapped.
  bytes = good;
  std::swap_ranges(bytes.begin() + header + 32, bytes.begin() + header + 64, bytes.begin() + header + 64);
  test::write_bytes(path, bytes);
  expect_error([&] { read_trajectory(path); }, {path, "step 1"});
  // The last full record is damaged and a torn one follows: two damaged records cannot come from a kill.
  bytes = good.substr(0, good.size() - 20);
  bytes[header + 4 * 32 + 3] ^= 0x01;
  test::write_bytes(path, bytes);
  expect_error([&] { read_trajectory(path); }, {path, "step 4"});
}

TEST(Trajectory, BadHeadersAreRefused) {
  const TrajectoryHeader h = make_header(1, at::kFloat);
  const std::string path = write_log(h, 2);
  const std::string good = test::read_bytes(path);
  std::string bytes = good;
  bytes[30] ^= 0x20;  // inside the JSON
  test::write_bytes(path, bytes);
  expect_error([&] { read_trajectory(path); }, {path, "header", "CRC"});
  test::write_bytes(path, "{\"not\": \"a log\"}");
  expect_error([&] { read_trajectory(path); }, {path, "not a zo2 trajectory"});
  test::write_bytes(path, good.substr(0, 40));
  expect_error([&] { read_trajectory(path); }, {path, "truncated"});
  expect_error([&] { TrajectoryWriter::create(path, h); }, {path, "already exists"});
}

TEST(Trajectory, AppendRefusesAStepOutOfOrder) {
  const TrajectoryHeader h = make_header(1, at::kFloat);
  const std::string path = write_log(h, 2);
  TrajectoryWriter w(path, h, 2, 1);
  expect_error([&] { w.append(make_record(3, 1)); }, {path, "step 3", "step 2"});
  expect_error([&] { w.append(make_record(2, 2)); }, {path, "step 2", "projected gradients"});
}

// ---------------------------------------------------------------- replay

struct TrainedRun {
  std::unique_ptr<ResidentModel> model;
  TrajectoryHeader header;
  std::vector<TrajectoryRecord> records;
};

// Trains `steps` steps with the engine (updates fused into the next step's passes, the last by flush),
// recording what the trainer's hook records. `flush_every_step` flushes after each step instead.
TrainedRun train(at::ScalarType storage, int64_t q, int64_t steps, bool flush_every_step = false) {
  const OptConfig c = test::ckpt_config();
  TrainedRun r;
  r.model = std::make_unique<ResidentModel>(c, random_weights(c, storage, at::kCPU, 17));
  r.header = make_header(q, storage);
  SingleProcess comm;
  MezoEngine engine(*r.model, comm, r.header.mezo, at::kFloat);
  const std::vector<Example> ex = test::lm_examples(c, 16, 3);
  for (int64_t s = 0; s < steps; ++s) {
    const StepStats st = engine.step(s, {test::lm_batch(ex, 2 * s, 2)}, 2e-2 * (1 + s % 3));
    r.records.push_back(trajectory_record(st));
    if (flush_every_step) engine.flush();
  }
  engine.flush();
  return r;
}

TEST(Replay, EqualsTrainedWeightsBitwise) {
  const OptConfig c = test::ckpt_config();
  for (at::ScalarType storage : {at::kFloat, at::kBFloat16}) {
    for (int64_t q : {1, 2}) {
      const TrainedRun run = train(storage, q, 6);
      ResidentModel base(c, random_weights(c, storage, at::kCPU, 17));
      const auto before = test::stored_weights(base);
      replay(base, run.header, run.records, 0, run.records.size(), at::kFloat);
      EXPECT_TRUE(test::same_bits(test::stored_weights(base), test::stored_weights(*run.model)))
          << c10::toString(storage) << " q " << q;
      EXPECT_FALSE(test::same_bits(before, test::stored_weights(base))) << "the run did not move the weights";
    }
  }
}

// Applying a step's update by flush() (what a checkpoint does) gives the bits of applying it fused into
// the next step's perturbation pass: saving never changes a run.
TEST(Replay, FlushAfterEveryStepGivesTheBitsOfFusedUpdates) {
  for (at::ScalarType storage : {at::kFloat, at::kBFloat16}) {
    const TrainedRun fused = train(storage, 2, 5, false);
    const TrainedRun flushed = train(storage, 2, 5, true);
    EXPECT_TRUE(test::same_bits(test::stored_weights(*fused.model), test::stored_weights(*flushed.model)))
        << c10::toString(storage);
    for (size_t i = 0; i < fused.records.size(); ++i) EXPECT_EQ(fused.records[i].g, flushed.records[i].g) << i;
  }
}

TEST(Replay, StreamedModelEqualsTrainedWeights) {
  const OptConfig c = test::ckpt_config();
  for (at::ScalarType storage : {at::kFloat, at::kBFloat16}) {
    const TrainedRun run = train(storage, 1, 5);
    OffloadOptions oo{1, true, {1}, false};
    oo.writeback_every = 2;
    std::unique_ptr<OffloadModel> m =
        test::streamed_model(c, random_weights(c, storage, at::kCPU, 17), storage, at::kCPU, oo);
    OffloadModel& streamed = *m;
    ResidentModel resident_base(c, random_weights(c, storage, at::kCPU, 17));
    EXPECT_EQ(model_checksum(streamed), model_checksum(resident_base)) << "checksums depend on the placement";
    replay(streamed, run.header, run.records, 0, run.records.size(), at::kFloat);
    EXPECT_TRUE(test::same_bits(test::stored_weights(streamed), test::stored_weights(*run.model)))
        << c10::toString(storage);
    EXPECT_EQ(model_checksum(streamed), model_checksum(*run.model));
  }
}

TEST(Replay, SkippedStepsApplyNothingAndInconsistentRecordsAreRefused) {
  const OptConfig c = test::ckpt_config();
  const TrajectoryHeader h = make_header(1, at::kFloat);
  ResidentModel m(c, random_weights(c, at::kFloat, at::kCPU, 17));
  const auto before = test::stored_weights(m);
  std::vector<TrajectoryRecord> recs = {make_record(0, 1)};
  recs[0].g[0] = std::numeric_limits<double>::infinity();
  recs[0].skipped = true;
  replay(m, h, recs, 0, 1, at::kFloat);
  EXPECT_TRUE(test::same_bits(before, test::stored_weights(m)));
  recs[0].skipped = false;
  expect_error([&] { replay(m, h, recs, 0, 1, at::kFloat); }, {"step 0", "not finite"});
  recs[0] = make_record(0, 1);
  recs[0].skipped = true;
  expect_error([&] { replay(m, h, recs, 0, 1, at::kFloat); }, {"step 0", "skipped"});
  recs[0] = make_record(1, 1);
  expect_error([&] { replay(m, h, recs, 0, 1, at::kFloat); }, {"step 1", "expected 0"});
}

}  // namespace
}  // namespace zo2
