// Checkpoints and resume in-process (the trainer, RunCheckpointer, plan_resume, restore_run): a run
// stopped after any step and resumed ends with the bytes of an uninterrupted run; damaged or foreign
// checkpoints and changed settings are refused with the file and step named.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "common/test_util.h"
#include "io/checkpoint.h"
#include "io/zip_archive.h"  // crc32
#include "train/checkpointing.h"
#include "unit/test_checkpoint_util.h"
#include "zo/init.h"

namespace zo2 {
namespace {

namespace fs = std::filesystem;
using test::expect_error;

struct Killed {};

struct Spec {
  std::string out;
  int64_t steps = 12;
  int64_t save_every = 4;
  int64_t keep = 2;
  at::ScalarType storage = at::kBFloat16;
  double lr = 2e-2;
  int64_t kill_after = -1;  // throw after this step's record (a kill: the pending update is lost)
  bool streamed = false;    // the model streams its blocks (CPU "offload")
};

std::unique_ptr<ZoModel> make_model(const OptConfig& c, OptWeights w, bool streamed, at::ScalarType storage) {
  if (!streamed) return std::make_unique<ResidentModel>(c, std::move(w));
  OffloadOptions oo;
  oo.writeback_every = 3;  // lazy write-back: host copies lag, saves must still see every update
  return test::streamed_model(c, w, storage, at::kCPU, oo);
}

// zo2 train's flow (launcher/train_checkpoint.cpp) with library calls: plan, load, restore, train.
void run(const Spec& s) {
  const OptConfig c = test::ckpt_config();
  CheckpointOptions o;
  o.out = s.out;
  o.save_every = s.save_every;
  o.keep = s.keep;
  const ResumePlan plan = plan_resume(o);
  OptWeights w = plan.checkpoint.empty() ? random_weights(c, s.storage, at::kCPU, 17)
                                         : load_checkpoint(plan.checkpoint, {s.storage, at::kCPU}).weights;
  std::unique_ptr<ZoModel> model = make_model(c, std::move(w), s.streamed, s.storage);
  SingleProcess comm;
  TrajectoryHeader h;
  h.mezo.seed = 5;
  h.mezo.eps = 1e-2f;
  h.mezo.weight_decay = 0.01f;
  h.storage = s.storage;
  h.cfg = c;
  h.base = "preset:test:17";
  h.run = {{"lr", s.lr}, {"batch_size", 2}};
  if (!plan.found) h.base_checksum = model_checksum(*model);
  MezoEngine engine(*model, comm, h.mezo, at::kFloat);
  TrainOptions to;
  to.steps = s.steps;
  to.start_step = restore_run(plan, h, *model, engine, at::kFloat);
  to.batch_size = 2;
  to.lr.base = s.lr;
  to.data_seed = 9;
  to.progress = false;
  RunCheckpointer ck(o, h, plan, engine, *model, s.storage, s.steps, true);
  const std::vector<Example> data = test::lm_examples(c, 10, 4);
  train(engine, *model, data, {}, to, comm, at::kFloat, [&](const StepStats& st) {
    ck.on_step(st);
    if (st.step == s.kill_after) throw Killed{};
  });
  ck.finish();
}

std::vector<std::string> dirs_of(const std::string& out) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(out))
    if (e.is_directory()) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The files an uninterrupted run leaves (final weights, state, log).
struct Result {
  std::string weights, state, log;
};
Result result(const std::string& out, int64_t steps) {
  const std::string ck = checkpoint_dir(out, steps);
  return {test::read_bytes(ck + "/model.safetensors"), test::read_bytes(ck + "/zo2_state.json"),
          test::read_bytes(out + "/trajectory.zo2traj")};
}

TEST(Checkpoint, ResumeAfterAKillEndsWithTheUninterruptedRunsBytes) {
  for (at::ScalarType storage : {at::kFloat, at::kBFloat16}) {
    Spec ref;
    ref.out = test::temp_dir("ckpt_ref");
    ref.save_every = 0;  // no intermediate saves: saving must not change the run
    ref.storage = storage;
    run(ref);
    const Result want = result(ref.out, ref.steps);
    ASSERT_FALSE(want.weights.empty());
    // Before the first checkpoint, just after one, between two; resumed resident or streamed.
    for (int64_t kill : {2, 7, 9}) {
      for (bool streamed : {false, true}) {
        Spec s;
        s.out = test::temp_dir("ckpt_kill");
        s.storage = storage;
        s.kill_after = kill;
        EXPECT_THROW(run(s), Killed);
        EXPECT_EQ(read_trajectory(s.out + "/trajectory.zo2traj").records.size(), static_cast<size_t>(kill + 1));
        s.kill_after = -1;
        s.streamed = streamed;
        run(s);
        const Result got = result(s.out, s.steps);
        const std::string what = std::string(c10::toString(storage)) + " kill after step " + std::to_string(kill) +
                                 (streamed ? ", resumed streamed" : "");
        EXPECT_TRUE(got.weights == want.weights) << what;
        EXPECT_TRUE(got.state == want.state) << what;
        EXPECT_TRUE(got.log == want.log) << what;
        EXPECT_EQ(dirs_of(s.out), (std::vector<std::string>{"checkpoint-12", "checkpoint-8"})) << what;
      }
    }
  }
}

TEST(Checkpoint, KeepDeletesOnlyOlderCheckpoints) {
  for (int64_t keep : {0, 1, 3}) {
    Spec s;
    s.out = test::temp_dir("ckpt_keep");
    s.save_every = 3;
    s.keep = keep;
    run(s);
    std::vector<std::string> want = {"checkpoint-12", "checkpoint-3", "checkpoint-6", "checkpoint-9"};
    if (keep == 1) want = {"checkpoint-12"};
    if (keep == 3) want = {"checkpoint-12", "checkpoint-6", "checkpoint-9"};
    EXPECT_EQ(dirs_of(s.out), want) << "keep " << keep;
  }
}

// A run killed inside a save: the partial directory is never taken for a checkpoint.
TEST(Checkpoint, PartialSaveIsIgnoredAndRemoved) {
  Spec ref;
  ref.out = test::temp_dir("ckpt_ref");
  run(ref);
  Spec s;
  s.out = test::temp_dir("ckpt_partial");
  s.kill_after = 9;
  EXPECT_THROW(run(s), Killed);
  // What a kill between the weights and the state file of checkpoint-12 leaves: a loadable HF directory.
  fs::copy(checkpoint_dir(s.out, 8), s.out + "/.checkpoint-12.partial");
  fs::remove(s.out + "/.checkpoint-12.partial/zo2_state.json");
  CheckpointOptions o;
  o.out = s.out;
  const ResumePlan plan = plan_resume(o);
  EXPECT_EQ(plan.checkpoint, checkpoint_dir(s.out, 8));
  ASSERT_EQ(plan.notes.size(), 1u);
  EXPECT_NE(plan.notes[0].find(".checkpoint-12.partial"), std::string::npos);
  s.kill_after = -1;
  run(s);
  EXPECT_FALSE(fs::exists(s.out + "/.checkpoint-12.partial"));
  EXPECT_TRUE(result(s.out, 12).weights == result(ref.out, 12).weights);
}

TEST(Checkpoint, DamagedOrForeignCheckpointsAreRefusedNamingFileAndStep) {
  Spec s;
  s.out = test::temp_dir("ckpt_bad");
  s.kill_after = 9;
  EXPECT_THROW(run(s), Killed);
  s.kill_after = -1;
  const std::string ck = checkpoint_dir(s.out, 8), weights = ck + "/model.safetensors", state = ck + "/zo2_state.json";
  const std::string good_weights = test::read_bytes(weights), good_state = test::read_bytes(state);

  std::string bytes = good_weights;
  bytes[bytes.size() - 3] ^= 0x10;  // a weight of the last tensor
  test::write_bytes(weights, bytes);
  expect_error([&] { run(s); }, {ck, "step 8", "checksum", "corrupt"});
  test::write_bytes(weights, good_weights.substr(0, good_weights.size() / 2));
  expect_error([&] { run(s); }, {weights});
  test::write_bytes(weights, good_weights);

  fs::remove(state);
  expect_error([&] { run(s); }, {state, "checkpoint-8", "not a complete"});
  test::write_bytes(state, good_state.substr(0, 20));
  expect_error([&] { run(s); }, {state, "corrupt"});
  std::string other = good_state;
  other.replace(other.find("\"step\": 8"), 9, "\"step\": 7");
  test::write_bytes(state, other);
  expect_error([&] { run(s); }, {state, "step 7", "checkpoint-8"});
  other = good_state;
  const size_t id = other.find("\"run_id\": \"") + 11;
  other[id] = other[id] == '0' ? '1' : '0';
  test::write_bytes(state, other);
  expect_error([&] { run(s); }, {state, "step 8", "another run"});
  test::write_bytes(state, good_state);

  // Settings that change the arithmetic.
  Spec changed = s;
  changed.lr = 1e-2;
  expect_error([&] { run(changed); }, {s.out + "/trajectory.zo2traj", "lr", "settings differ"});
  changed = s;
  changed.storage = at::kFloat;
  expect_error([&] { run(changed); }, {"storage_dtype"});

  // Corrupt log record before the end.
  const std::string log = s.out + "/trajectory.zo2traj";
  bytes = test::read_bytes(log);
  bytes[bytes.size() - 3 * 32 + 20] ^= 0x01;  // step 7 of 10
  test::write_bytes(log, bytes);
  expect_error([&] { run(s); }, {log, "step 7", "corrupt"});
}

TEST(Checkpoint, ResumeFromTheBaseChecksTheBase) {
  Spec s;
  s.out = test::temp_dir("ckpt_base");
  s.kill_after = 1;  // before the first checkpoint: resume replays the log onto the base
  EXPECT_THROW(run(s), Killed);
  // Another base: the log's header records the base's checksum.
  std::string log = test::read_bytes(s.out + "/trajectory.zo2traj");
  const size_t at = log.find("\"base_checksum\":\"") + 17;
  log[at] = log[at] == 'a' ? 'b' : 'a';
  // Re-seal the header's CRC the way the writer does, so only the checksum differs.
  const uint32_t len = *reinterpret_cast<const uint32_t*>(log.data() + 12);
  const uint32_t crc = crc32(reinterpret_cast<const uint8_t*>(log.data()), 16 + len);
  std::memcpy(&log[16 + len], &crc, 4);
  test::write_bytes(s.out + "/trajectory.zo2traj", log);
  s.kill_after = -1;
  expect_error([&] { run(s); }, {"trajectory.zo2traj", "base weights", "checksum"});
}

}  // namespace
}  // namespace zo2
