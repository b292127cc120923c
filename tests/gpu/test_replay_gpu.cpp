// Replay on CUDA: the base weights plus the trajectory log give the weights trained on the GPU bitwise
// (resident and streamed models, f32/f16/bf16 storage with stochastic rounding), and applying an update
// by flush() gives the bits of the fused update+perturbation pass.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "train/trajectory.h"
#include "unit/test_checkpoint_util.h"
#include "zo/init.h"

namespace zo2 {
namespace {

const at::Device kCuda(at::kCUDA, 0);

struct TrainedRun {
  std::unique_ptr<ResidentModel> model;
  TrajectoryHeader header;
  std::vector<TrajectoryRecord> records;
};

TrainedRun train_on_gpu(at::ScalarType storage, int64_t q, int64_t steps, bool flush_every_step) {
  const OptConfig c = test::ckpt_config();
  TrainedRun r;
  r.model = std::make_unique<ResidentModel>(c, random_weights(c, storage, kCuda, 17));
  r.header.mezo.seed = 11;
  r.header.mezo.q = q;
  r.header.mezo.eps = 1e-2f;
  r.header.mezo.weight_decay = 0.05f;
  r.header.storage = storage;
  r.header.cfg = c;
  SingleProcess comm;
  const at::ScalarType compute = storage == at::kFloat ? at::kFloat : storage;
  MezoEngine engine(*r.model, comm, r.header.mezo, compute);
  const std::vector<Example> ex = test::lm_examples(c, 16, 3);
  for (int64_t s = 0; s < steps; ++s) {
    const StepStats st = engine.step(s, {test::lm_batch(ex, 2 * s, 2).to(kCuda)}, 2e-2 * (1 + s % 3));
    r.records.push_back(trajectory_record(st));
    if (flush_every_step) engine.flush();
  }
  engine.flush();
  return r;
}

TEST(ReplayGpu, EqualsTrainedWeightsBitwise) {
  ZO2_SKIP_WITHOUT_CUDA();
  const OptConfig c = test::ckpt_config();
  for (at::ScalarType storage : {at::kFloat, at::kHalf, at::kBFloat16}) {
    for (int64_t q : {1, 3}) {
      const TrainedRun run = train_on_gpu(storage, q, 6, false);
      const auto trained = test::stored_weights(*run.model);
      ResidentModel base(c, random_weights(c, storage, kCuda, 17));
      const auto before = test::stored_weights(base);
      replay(base, run.header, run.records, 0, run.records.size(), at::kFloat);
      EXPECT_TRUE(test::same_bits(test::stored_weights(base), trained)) << c10::toString(storage) << " q " << q;
      EXPECT_FALSE(test::same_bits(before, trained)) << "the run did not move the weights";

      // Streamed: blocks in pinned host memory, one resident.
      OffloadOptions oo{1, true, {2}, false};
      oo.writeback_every = 4;
      auto streamed = test::streamed_model(c, random_weights(c, storage, kCuda, 17), storage, kCuda, oo);
      replay(*streamed, run.header, run.records, 0, run.records.size(), at::kFloat);
      EXPECT_TRUE(test::same_bits(test::stored_weights(*streamed), trained))
          << "streamed, " << c10::toString(storage) << " q " << q;
    }
  }
}

TEST(ReplayGpu, FlushGivesTheBitsOfFusedUpdates) {
  ZO2_SKIP_WITHOUT_CUDA();
  for (at::ScalarType storage : {at::kFloat, at::kHalf, at::kBFloat16}) {
    const TrainedRun fused = train_on_gpu(storage, 2, 5, false);
    const TrainedRun flushed = train_on_gpu(storage, 2, 5, true);
    EXPECT_TRUE(test::same_bits(test::stored_weights(*fused.model), test::stored_weights(*flushed.model)))
        << c10::toString(storage);
  }
}

// Checksums of the same bytes agree between the GPU and the CPU (resume may verify either way).
TEST(ReplayGpu, ModelChecksumIsDeviceIndependent) {
  ZO2_SKIP_WITHOUT_CUDA();
  const OptConfig c = test::ckpt_config();
  ResidentModel gpu(c, random_weights(c, at::kHalf, kCuda, 5));
  OptWeights w = random_weights(c, at::kHalf, kCuda, 5);
  for_each_param(c, w, [](const ParamInfo&, at::Tensor& t) { t = t.to(at::kCPU); });
  ResidentModel cpu(c, w);
  EXPECT_EQ(model_checksum(gpu), model_checksum(cpu));
}

}  // namespace
}  // namespace zo2
