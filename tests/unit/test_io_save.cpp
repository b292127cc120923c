// Writing checkpoints. The reference is the safetensors/transformers writer itself: our output must be
// byte-identical to the files transformers 5.17 wrote for the same model (tests/data/parity, made by
// scripts/ref/make_parity.py), including the 8 KB sharding of variants/sharded. Round trips are bitwise
// for every storage dtype; a save that fails midway leaves no directory that loads.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "io/checkpoint_save.h"
#include "zo/init.h"
#include "test_io_util.h"
#include "zo/init.h"

namespace zo2 {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

TEST(SaveCheckpoint, ByteIdenticalToTransformers) {
  struct Case {
    const char* source;
    at::ScalarType dtype;
    uint64_t shard;
    std::vector<std::string> files;
  };
  const std::vector<Case> cases = {
      {"parity/small", at::kFloat, 5'000'000'000, {"model.safetensors"}},
      {"parity/untied", at::kFloat, 5'000'000'000, {"model.safetensors"}},  // with lm_head.weight
      {"parity/post_ln_proj", at::kFloat, 5'000'000'000, {"model.safetensors"}},
      {"parity/variants/bf16", at::kBFloat16, 5'000'000'000, {"model.safetensors"}},
      {"parity/variants/sharded", at::kFloat, 8000,
       {"model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors", "model-00003-of-00004.safetensors",
        "model-00004-of-00004.safetensors", "model.safetensors.index.json"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.source);
    const std::string src = test::data_path(c.source);
    const Checkpoint ck = load_checkpoint(src, {c.dtype, at::kCPU});
    const std::string out = test::temp_dir("save_ref");
    SaveOptions opt;
    opt.max_shard_bytes = c.shard;
    save_checkpoint(out, ck.cfg, ck.weights, c.dtype, opt);
    for (const std::string& f : c.files) {
      SCOPED_TRACE(f);
      const std::string want = test::read_bytes(src + "/" + f), got = test::read_bytes(out + "/" + f);
      ASSERT_FALSE(want.empty());
      EXPECT_TRUE(got == want) << "sizes " << got.size() << " vs " << want.size();
    }
    std::vector<std::string> expect = c.files;
    expect.push_back("config.json");
    std::sort(expect.begin(), expect.end());
    EXPECT_EQ(listing(out), expect);  // nothing else: no temporary files
  }
}

TEST(SaveCheckpoint, ConfigRoundTrips) {
  const Checkpoint ck = load_checkpoint(test::data_path("parity/post_ln_proj"));
  const std::string out = test::temp_dir("save_cfg");
  save_checkpoint(out, ck.cfg, ck.weights, at::kHalf);
  const OptConfig c = load_hf_config(out + "/config.json");
  EXPECT_EQ(c.hidden, ck.cfg.hidden);
  EXPECT_EQ(c.word_embed_dim, 32);
  EXPECT_FALSE(c.pre_ln);
  EXPECT_EQ(c.max_positions, ck.cfg.max_positions);
  const auto j = nlohmann::json::parse(test::read_bytes(out + "/config.json"));
  EXPECT_EQ(j["torch_dtype"], "float16");
  EXPECT_EQ(j["dtype"], "float16");
}

// save then load gives bitwise the saved tensors, for every storage dtype and architecture variant.
TEST(SaveCheckpoint, RoundTripIsBitwiseForEachDtype) {
  std::vector<OptConfig> cfgs(3);
  for (OptConfig& c : cfgs) {
    c.vocab_size = 50;
    c.hidden = 8;
    c.layers = 2;
    c.heads = 2;
    c.ffn = 16;
    c.max_positions = 10;
    c.word_embed_dim = 8;
  }
  cfgs[1].tie_word_embeddings = false;
  cfgs[2].pre_ln = false;
  cfgs[2].word_embed_dim = 4;
  for (const OptConfig& cfg : cfgs) {
    for (at::ScalarType dt : {at::kFloat, at::kHalf, at::kBFloat16}) {
      for (uint64_t shard : {uint64_t(5'000'000'000), uint64_t(300)}) {
        SCOPED_TRACE(std::string(hf_dtype_name(dt)) + (cfg.tie_word_embeddings ? " tied" : " untied") +
                     (cfg.pre_ln ? "" : " post-LN") + " shard " + std::to_string(shard));
        OptWeights w = random_weights(cfg, at::kFloat, at::kCPU, 7);
        const std::string out = test::temp_dir("save_rt");
        SaveOptions opt;
        opt.max_shard_bytes = shard;
        save_checkpoint(out, cfg, w, dt, opt);
        EXPECT_EQ(fs::exists(out + "/model.safetensors.index.json"), shard < 1000);
        Checkpoint back = load_checkpoint(out, {dt, at::kCPU});
        auto want = test::by_name(cfg, w);
        auto got = test::by_name(back.cfg, back.weights);
        ASSERT_EQ(got.size(), want.size());
        for (auto& [name, t] : want) {
          ASSERT_TRUE(got.count(name)) << name;
          EXPECT_EQ(got[name].scalar_type(), dt);
          EXPECT_TRUE(at::equal(got[name], t.to(dt))) << name;
        }
      }
    }
  }
}

TEST(SaveCheckpoint, CopiesTokenizerFiles) {
  const std::string tok = test::temp_dir("save_tok_src");
  const std::vector<std::string> names = {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"};
  for (const std::string& n : names) test::write_bytes(tok + "/" + n, "content of " + n);
  test::write_bytes(tok + "/unrelated.txt", "x");
  const Checkpoint ck = load_checkpoint(test::data_path("parity/small"));
  const std::string out = test::temp_dir("save_tok");
  SaveOptions opt;
  opt.tokenizer_dir = tok;
  save_checkpoint(out, ck.cfg, ck.weights, at::kFloat, opt);
  for (const std::string& n : names) EXPECT_EQ(test::read_bytes(out + "/" + n), "content of " + n);
  EXPECT_FALSE(fs::exists(out + "/unrelated.txt"));

  opt.tokenizer_dir = tok + "/nonexistent";
  test::expect_error([&] { save_checkpoint(test::temp_dir("save_tok2"), ck.cfg, ck.weights, at::kFloat, opt); },
                     {"nonexistent"});
}

TEST(SaveCheckpoint, ReplacesAnEarlierLayout) {
  const Checkpoint ck = load_checkpoint(test::data_path("parity/small"));
  const std::string out = test::temp_dir("save_replace");
  SaveOptions sharded;
  sharded.max_shard_bytes = 8000;
  save_checkpoint(out, ck.cfg, ck.weights, at::kFloat, sharded);
  test::write_bytes(out + "/pytorch_model.bin", "stale");
  save_checkpoint(out, ck.cfg, ck.weights, at::kHalf);
  EXPECT_EQ(listing(out), (std::vector<std::string>{"config.json", "model.safetensors"}));
  EXPECT_EQ(load_checkpoint(out).weights.blocks[1].fc2_w.to(at::kHalf).equal(ck.weights.blocks[1].fc2_w.to(at::kHalf)), true);
}

// A save that dies midway (here: the tensor source throws at the 20th parameter) leaves no config.json,
// so the directory -- even one that held a good checkpoint before -- is not mistaken for a checkpoint,
// and no temporary file is left behind.
TEST(SaveCheckpoint, InterruptedSaveLeavesNoCheckpoint) {
  const Checkpoint ck = load_checkpoint(test::data_path("parity/small"));
  for (bool had_checkpoint : {false, true}) {
    SCOPED_TRACE(had_checkpoint ? "over an earlier checkpoint" : "into a new directory");
    const std::string out = test::temp_dir("save_abort");
    if (had_checkpoint) save_checkpoint(out, ck.cfg, ck.weights, at::kFloat);
    int calls = 0;
    auto failing = [&](const ParamInfo& p) -> at::Tensor {
      if (++calls == 20) throw_error("simulated failure at ", p.name);
      return p.layer < 0 ? ck.weights.outer.slot(p.slot) : ck.weights.blocks[p.layer].slot(p.slot);
    };
    SaveOptions opt;
    opt.max_shard_bytes = 8000;
    test::expect_error([&] { save_checkpoint_tensors(out, ck.cfg, at::kFloat, opt, failing); }, {"simulated failure"});
    EXPECT_FALSE(fs::exists(out + "/config.json"));
    for (const std::string& f : listing(out)) EXPECT_NE(f[0], '.') << "temporary file left: " << f;
    test::expect_error([&] { load_checkpoint(out); }, {"config.json"});
  }
}

TEST(SaveCheckpoint, RejectsWrongShapesAndDtypes) {
  Checkpoint ck = load_checkpoint(test::data_path("parity/small"));
  ck.weights.blocks[0].fc1_b = at::zeros({31});
  test::expect_error([&] { save_checkpoint(test::temp_dir("save_bad"), ck.cfg, ck.weights, at::kFloat); },
                     {"model.decoder.layers.0.fc1.bias", "[31]"});
  test::expect_error([&] { save_checkpoint(test::temp_dir("save_bad"), ck.cfg, ck.weights, at::kDouble); },
                     {"float32, float16 or bfloat16"});
}

}  // namespace
}  // namespace zo2
