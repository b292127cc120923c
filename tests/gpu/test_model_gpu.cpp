// The model and the zeroth-order step on a CUDA device: parity with transformers in fp32/fp16/bf16,
// streamed == resident == serial bitwise, and determinism. Skipped without a CUDA device.
#include <gtest/gtest.h>

#include <map>

#include "common/test_util.h"
#include "data/example.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "model/loss.h"
#include "offload/offload_model.h"
#include "zo/init.h"
#include "zo/mezo.h"

namespace zo2 {
namespace {

const at::Device kCuda(at::kCUDA, 0);

// Logits of the parity models (tests/data/parity) on the GPU against transformers' fp32 logits.
// Metric: relative L2 over real-token positions (pad rows are meaningless and SDPA treats them
// differently from transformers' eager path). fp32 1e-4 (as on the CPU), fp16/bf16 2e-2.
TEST(ModelGpu, ParityWithTransformers) {
  ZO2_SKIP_WITHOUT_CUDA();
  for (const char* name : {"pre_ln", "post_ln_proj", "untied", "small"}) {
    const std::string dir = test::data_path(std::string("parity/") + name);
    SafetensorsFile ref(dir + "/reference.safetensors");
    at::Tensor ids = ref.tensor("input_ids").to(kCuda), mask = ref.tensor("attention_mask").to(kCuda);
    at::Tensor want = ref.tensor("logits").clone();
    const int64_t B = ids.size(0), T = ids.size(1);
    at::Tensor real = ref.tensor("attention_mask").reshape(-1).nonzero().squeeze(1);
    for (auto [dtype, tol] : std::vector<std::pair<at::ScalarType, double>>{
             {at::kFloat, 1e-4}, {at::kHalf, 2e-2}, {at::kBFloat16, 2e-2}}) {
      for (AttentionImpl impl : {AttentionImpl::kAuto, AttentionImpl::kManual}) {
        Checkpoint ck = load_checkpoint(dir, {dtype, kCuda});
        AttnMask am = make_attn_mask(mask, impl);
        PlainParams src(dtype);
        at::Tensor h = decoder_forward(ck.cfg, ck.weights, src, ids, am);
        at::Tensor logits = logits_at(ck.cfg, ck.weights.outer, src, h, at::arange(B * T, ids.options()))[0];
        const double err = test::rel_l2(logits.cpu().index_select(0, real), want.view({B * T, -1}).index_select(0, real));
        std::printf("parity %-13s %-9s %-6s rel L2 %.3g (tolerance %.0e)\n", name, c10::toString(dtype),
                    impl == AttentionImpl::kAuto ? "sdpa" : "manual", err, tol);
        EXPECT_LT(err, tol) << name << " " << dtype;
      }
    }
  }
}

OptConfig small_config() {
  OptConfig c;
  c.name = "gpu-offload";
  c.vocab_size = 512;
  c.hidden = 256;
  c.layers = 6;
  c.heads = 4;
  c.ffn = 1024;
  c.max_positions = 128;
  c.word_embed_dim = 256;
  return c;
}

std::vector<Batch> batches(const OptConfig& c) {
  std::vector<Batch> out;
  at::Generator g = at::detail::createCPUGenerator(5);
  for (int s = 0; s < 4; ++s) {
    std::vector<Example> ex(3);
    std::vector<const Example*> p;
    for (int i = 0; i < 3; ++i) {
      at::Tensor ids = at::randint(3, c.vocab_size, {20 + 7 * i + s}, g, at::TensorOptions().dtype(at::kLong));
      ex[i].candidates.push_back({std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel()), 1});
      p.push_back(&ex[i]);
    }
    out.push_back(make_batch(p, BatchOptions{}).to(kCuda));
  }
  return out;
}

struct RunTrace {
  std::vector<double> losses;
  std::vector<uint64_t> checksums;
};

RunTrace train(ZoModel& m, int64_t q, bool lookahead = false) {
  SingleProcess comm;
  MezoOptions mo;
  mo.seed = 11;
  mo.q = q;
  mo.lookahead = lookahead;
  mo.weight_decay = 0.01f;
  MezoEngine e(m, comm, mo, at::kHalf);
  RunTrace t;
  int64_t step = 0;
  for (const Batch& b : batches(m.config())) {
    StepStats st = e.step(step++, {b}, 1e-3);
    t.losses.insert(t.losses.end(), st.loss_plus.begin(), st.loss_plus.end());
    t.losses.insert(t.losses.end(), st.loss_minus.begin(), st.loss_minus.end());
  }
  e.flush();
  t.checksums = m.checksums();
  return t;
}

std::unique_ptr<OffloadModel> streamed(const OptConfig& c, OffloadOptions opt) {
  std::vector<int64_t> all;
  for (int64_t l = 0; l < c.layers; ++l) all.push_back(l);
  HostStore store(c, at::kHalf, all, /*pinned=*/true);
  at::Tensor tmp = at::empty({store.layout().bytes}, at::TensorOptions().dtype(at::kByte).device(kCuda));
  BlockWeights w = store.layout().view(tmp);
  for (int64_t l = 0; l < c.layers; ++l) {
    init_random_block(c, l, w, 21);
    store.buffer(l).copy_(tmp);
  }
  return std::make_unique<OffloadModel>(c, random_outer(c, at::kHalf, kCuda, 21), std::move(store), kCuda, opt);
}

// The same fp16 training run through every schedule, with and without copies written ahead on a side
// stream, gives the same bits (losses and weights).
TEST(OffloadGpu, StreamedResidentAndSerialAreBitwiseIdentical) {
  ZO2_SKIP_WITHOUT_CUDA();
  const OptConfig c = small_config();
  for (int64_t q : {1, 2}) {
    ResidentModel resident(c, random_weights(c, at::kHalf, kCuda, 21));
    const RunTrace ref = train(resident, q);
    const std::vector<std::pair<const char*, OffloadOptions>> variants = {
        {"all streamed", {1, true, {}, false}},   {"serial", {1, false, {}, false}},
        {"prefetch 2", {2, true, {}, false}},     {"blocks 1, 4 resident", {1, true, {1, 4}, false}},
        {"timing on", {1, true, {}, true}},       {"write back every 4th", {1, true, {}, false, 4}},
    };
    for (const auto& [name, opt] : variants) {
      for (bool lookahead : {false, true}) {
        auto m = streamed(c, opt);
        const RunTrace got = train(*m, q, lookahead);
        EXPECT_EQ(got.losses, ref.losses) << name << " q=" << q << " lookahead " << lookahead;
        EXPECT_EQ(got.checksums, ref.checksums) << name << " q=" << q << " lookahead " << lookahead;
      }
    }
    // Copies written ahead on the side stream are the copies written in line.
    ResidentModel ahead(c, random_weights(c, at::kHalf, kCuda, 21));
    const RunTrace got = train(ahead, q, /*lookahead=*/true);
    EXPECT_EQ(got.losses, ref.losses) << "resident, lookahead, q=" << q;
    EXPECT_EQ(got.checksums, ref.checksums) << "resident, lookahead, q=" << q;
  }
}

// Two runs with one seed give bitwise-identical weights; lr = 0 leaves them bitwise unchanged.
TEST(MezoGpu, DeterministicAndExactAtZeroLearningRate) {
  ZO2_SKIP_WITHOUT_CUDA();
  const OptConfig c = small_config();
  ResidentModel a(c, random_weights(c, at::kHalf, kCuda, 3)), b(c, random_weights(c, at::kHalf, kCuda, 3));
  EXPECT_EQ(train(a, 1).checksums, train(b, 1).checksums);

  ResidentModel z(c, random_weights(c, at::kHalf, kCuda, 4));
  const std::vector<uint64_t> before = z.checksums();
  SingleProcess comm;
  MezoEngine e(z, comm, MezoOptions{}, at::kHalf);
  int64_t step = 0;
  for (const Batch& bt : batches(c)) e.step(step++, {bt}, 0.0);
  e.flush();
  EXPECT_EQ(z.checksums(), before);
}

}  // namespace
}  // namespace zo2
