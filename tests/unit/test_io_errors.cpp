// Bad checkpoints never crash: each broken file below (made in the test from a good one) gives a
// zo2::Error whose one line names the file and, where one is at fault, the tensor; `zo2 inspect` prints
// that line and exits 1.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/zip_archive.h"
#include "test_io_util.h"

namespace zo2 {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

const char* kEmbed = "model.decoder.embed_tokens.weight";
const char* kFc1 = "model.decoder.layers.1.fc1.weight";

// ---------------------------------------------------------------- generators of broken files

// Rewrites the JSON header of a safetensors file, keeping its data bytes.
void patch_header(const std::string& path, const std::function<void(ordered_json&)>& fn) {
  std::string b = test::read_bytes(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(b[i]);
  ordered_json j = ordered_json::parse(b.substr(8, n));
  fn(j);
  std::string h = j.dump();
  h.resize((h.size() + 7) / 8 * 8, ' ');
  std::string len(8, '\0');
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
  test::write_bytes(path, len + h + b.substr(8 + n));
}

// Rewrites a well-formed safetensors file with a different set of tensors.
void rewrite_tensors(const std::string& path, const std::function<void(std::map<std::string, at::Tensor>&)>& fn) {
  std::map<std::string, at::Tensor> m;
  {
    SafetensorsFile f(path);
    for (const SafetensorsEntry& e : f.header().entries) m[e.name] = f.tensor(e.name).clone();
  }
  fn(m);
  std::vector<SafetensorsTensorSpec> specs;
  for (auto& [k, t] : m) specs.push_back({k, t.scalar_type(), t.sizes().vec()});
  write_safetensors(path, specs, {{"format", "pt"}}, [&](const SafetensorsTensorSpec& s) { return m[s.name]; });
}

void modify_file(const std::string& path, const std::function<void(std::string&)>& fn) {
  std::string b = test::read_bytes(path);
  fn(b);
  test::write_bytes(path, b);
}

void patch_json(const std::string& path, const std::function<void(nlohmann::json&)>& fn) {
  nlohmann::json j = nlohmann::json::parse(test::read_bytes(path));
  fn(j);
  test::write_bytes(path, j.dump(2));
}

void replace_text(const std::string& path, const std::string& from, const std::string& to) {
  modify_file(path, [&](std::string& s) {
    const size_t at = s.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    s.replace(at, from.size(), to);
  });
}

uint32_t le32(const std::string& b, size_t p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[p + i]);
  return v;
}
void put_le32(std::string& b, size_t p, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[p + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Changes the bytes of zip entry `<archive>/<suffix>` in place (same length) and, unless `keep_crc`,
// fixes its CRC-32 in the local and central headers, so that only the content is wrong.
void patch_zip_entry(const std::string& path, const std::string& suffix, const std::function<void(std::string&)>& fn,
                     bool keep_crc = false) {
  std::string b = test::read_bytes(path);
  bool done = false;
  for (size_t c = b.find("PK\x01\x02"); c != std::string::npos; c = b.find("PK\x01\x02", c + 1)) {
    if (c + 46 > b.size()) break;
    const uint32_t name_len = le32(b, c + 28) & 0xffff;
    const std::string name = b.substr(c + 46, name_len);
    if (name.size() < suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0 ||
        name.find('/') != name.size() - suffix.size() - 1)
      continue;
    const size_t local = le32(b, c + 42), size = le32(b, c + 24);
    const size_t data = local + 30 + (le32(b, local + 26) & 0xffff) + (le32(b, local + 28) & 0xffff);
    std::string content = b.substr(data, size);
    fn(content);
    ASSERT_EQ(content.size(), size);
    b.replace(data, size, content);
    if (!keep_crc) {
      const uint32_t crc = crc32(reinterpret_cast<const uint8_t*>(content.data()), content.size());
      put_le32(b, c + 16, crc);
      put_le32(b, local + 14, crc);
    }
    done = true;
  }
  ASSERT_TRUE(done) << suffix;
  test::write_bytes(path, b);
}

void replace_once(std::string& s, const std::string& from, const std::string& to) {
  ASSERT_EQ(from.size(), to.size());
  const size_t at = s.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  s.replace(at, from.size(), to);
}

void expect_load_error(const std::string& dir, const std::vector<std::string>& parts) {
  test::expect_error([&] { load_checkpoint(dir); }, parts);
}

struct Case {
  const char* what;
  std::function<void(const std::string&)> make;  // breaks a file (or the directory) of a fresh copy
  std::vector<std::string> expect;                // pieces the error line must contain
};

// Each case on a fresh copy of tests/data/<rel>; `file` is what make() gets ("" = the directory).
void run_cases(const std::string& rel, const std::string& file, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(rel + ": " + c.what);
    const std::string dir = test::copy_data_dir(rel, "err");
    c.make(file.empty() ? dir : dir + "/" + file);
    expect_load_error(dir, c.expect);
  }
}

// ---------------------------------------------------------------- safetensors

TEST(CheckpointErrors, SafetensorsFile) {
  const std::vector<Case> cases = {
      {"truncated", [](const std::string& f) { test::write_bytes(f, test::read_bytes(f).substr(0, 20000)); },
       {"model.safetensors", "past the end"}},
      {"shorter than the length field", [](const std::string& f) { test::write_bytes(f, "\x10\0\0"); },
       {"model.safetensors", "truncated"}},
      {"header length past the end",
       [](const std::string& f) { modify_file(f, [](std::string& b) { b[2] = 0x7f; }); },
       {"model.safetensors", "header length"}},
      {"invalid JSON",
       [](const std::string& f) { modify_file(f, [](std::string& b) { b[8] = 'x'; }); },
       {"model.safetensors", "JSON"}},
      {"overlapping offsets",
       [](const std::string& f) {
         patch_header(f, [](ordered_json& j) { j[kFc1]["data_offsets"][0] = j[kFc1]["data_offsets"][0].get<int>() - 4; });
       },
       {"model.safetensors", kFc1}},
      {"offsets past the data",
       [](const std::string& f) {
         patch_header(f, [](ordered_json& j) { j[kFc1]["data_offsets"][1] = 1 << 30; });
       },
       {"model.safetensors", kFc1, "past the end"}},
      {"unknown dtype", [](const std::string& f) { patch_header(f, [](ordered_json& j) { j[kFc1]["dtype"] = "F17"; }); },
       {"model.safetensors", kFc1, "unknown dtype"}},
      {"dtype zo2 does not load", [](const std::string& f) { patch_header(f, [](ordered_json& j) { j[kFc1]["dtype"] = "I32"; }); },
       {"model.safetensors", kFc1, "F32, F16 and BF16"}},
      {"dtype zo2 cannot hold", [](const std::string& f) { patch_header(f, [](ordered_json& j) { j[kFc1]["dtype"] = "U32"; }); },
       {"model.safetensors", kFc1, "not supported"}},
      {"size disagrees with shape", [](const std::string& f) { patch_header(f, [](ordered_json& j) { j[kFc1]["shape"] = {32, 15}; }); },
       {"model.safetensors", kFc1, "bytes for shape"}},
      {"missing tensor", [](const std::string& f) { rewrite_tensors(f, [](auto& m) { m.erase(kFc1); }); },
       {"model.safetensors", kFc1, "missing"}},
      {"unknown tensor",
       [](const std::string& f) { rewrite_tensors(f, [](auto& m) { m["model.decoder.layers.0.fc3.weight"] = at::zeros({2}); }); },
       {"model.safetensors", "model.decoder.layers.0.fc3.weight", "not a parameter"}},
      {"layer the config does not have",
       [](const std::string& f) {
         rewrite_tensors(f, [](auto& m) { m["model.decoder.layers.2.fc1.bias"] = at::zeros({32}); });
       },
       {"model.safetensors", "model.decoder.layers.2.fc1.bias"}},
      {"both key spellings",
       [](const std::string& f) { rewrite_tensors(f, [](auto& m) { m["decoder.layers.1.fc1.weight"] = m[kFc1]; }); },
       {"model.safetensors", "fc1.weight", "twice"}},
      {"tied lm_head that differs",
       [](const std::string& f) { rewrite_tensors(f, [](auto& m) { m["lm_head.weight"] = m[kEmbed] * 2; }); },
       {"model.safetensors", "lm_head.weight", "tie_word_embeddings"}},
      {"tied lm_head of the wrong shape",
       [](const std::string& f) { rewrite_tensors(f, [](auto& m) { m["lm_head.weight"] = at::zeros({100, 8}); }); },
       {"model.safetensors", "lm_head.weight", "shape"}},
  };
  run_cases("parity/small", "model.safetensors", cases);
}

TEST(CheckpointErrors, ConfigDisagreesWithTheWeights) {
  std::string dir = test::copy_data_dir("parity/small", "err_cfg");
  patch_json(dir + "/config.json", [](nlohmann::json& j) { j["ffn_dim"] = 48; });
  expect_load_error(dir, {"model.safetensors", "model.decoder.layers.0.fc1.", "config.json needs [48"});

  dir = test::copy_data_dir("parity/small", "err_untied");
  patch_json(dir + "/config.json", [](nlohmann::json& j) { j["tie_word_embeddings"] = false; });
  expect_load_error(dir, {"model.safetensors", "lm_head.weight", "missing"});

  dir = test::copy_data_dir("parity/small", "err_nocfg");
  fs::remove(dir + "/config.json");
  expect_load_error(dir, {"config.json"});

  dir = test::copy_data_dir("parity/small", "err_noweights");
  fs::remove(dir + "/model.safetensors");
  expect_load_error(dir, {"no weights"});
}

TEST(CheckpointErrors, IgnoredAndOptionalKeysLoad) {
  // fairseq's decoder.version marker is skipped; a tied lm_head equal to embed_tokens is accepted.
  const std::string dir = test::copy_data_dir("parity/small", "ok_keys");
  rewrite_tensors(dir + "/model.safetensors", [](auto& m) {
    m["decoder.version"] = at::full({1}, 2.0);
    m["lm_head.weight"] = m[kEmbed];
  });
  Checkpoint a = load_checkpoint(dir), b = load_checkpoint(test::data_path("parity/small"));
  EXPECT_TRUE(at::equal(a.weights.outer.embed_tokens, b.weights.outer.embed_tokens));
  EXPECT_FALSE(a.weights.outer.lm_head.defined());
}

// ---------------------------------------------------------------- sharded index

TEST(CheckpointErrors, ShardedIndex) {
  const std::string idx = "model.safetensors.index.json";
  const std::string k0 = "\"model.decoder.embed_positions.weight\": \"model-00002-of-00004.safetensors\"";
  const std::vector<Case> cases = {
      {"invalid JSON", [&](const std::string& d) { replace_text(d + "/" + idx, "\"weight_map\"", "\"weight_map\" ]"); },
       {idx, "invalid JSON"}},
      {"no weight_map", [&](const std::string& d) { replace_text(d + "/" + idx, "\"weight_map\"", "\"weightmap\""); },
       {idx, "weight_map"}},
      {"missing shard file", [](const std::string& d) { fs::remove(d + "/model-00003-of-00004.safetensors"); },
       {"model-00003-of-00004.safetensors", "does not exist"}},
      {"tensor listed twice", [&](const std::string& d) { replace_text(d + "/" + idx, k0, k0 + ",\n    " + k0); },
       {idx, "model.decoder.embed_positions.weight", "twice"}},
      {"tensor listed under both spellings",
       [&](const std::string& d) {
         replace_text(d + "/" + idx, k0, k0 + ",\n    \"decoder.embed_positions.weight\": \"model-00002-of-00004.safetensors\"");
       },
       {idx, "embed_positions.weight", "twice"}},
      {"tensor missing from the index",
       [&](const std::string& d) { patch_json(d + "/" + idx, [](nlohmann::json& j) { j["weight_map"].erase(kFc1); }); },
       {idx, kFc1, "missing"}},
      {"unknown tensor in the index",
       [&](const std::string& d) {
         patch_json(d + "/" + idx, [](nlohmann::json& j) { j["weight_map"]["model.decoder.foo"] = "model-00001-of-00004.safetensors"; });
       },
       {idx, "model.decoder.foo", "not a parameter"}},
      {"index puts a tensor in the wrong shard",
       [&](const std::string& d) {
         patch_json(d + "/" + idx, [](nlohmann::json& j) { j["weight_map"][kEmbed] = "model-00002-of-00004.safetensors"; });
       },
       {kEmbed}},
      {"shard outside the directory",
       [&](const std::string& d) {
         patch_json(d + "/" + idx, [](nlohmann::json& j) { j["weight_map"][kEmbed] = "../small/model.safetensors"; });
       },
       {idx, kEmbed, "plain file name"}},
      {"shard name not a string",
       [&](const std::string& d) { patch_json(d + "/" + idx, [](nlohmann::json& j) { j["weight_map"][kEmbed] = 3; }); },
       {idx, kEmbed, "string"}},
      {"truncated shard",
       [](const std::string& d) {
         const std::string f = d + "/model-00002-of-00004.safetensors";
         test::write_bytes(f, test::read_bytes(f).substr(0, 4000));
       },
       {"model-00002-of-00004.safetensors"}},
  };
  run_cases("parity/variants/sharded", "", cases);
}

// ---------------------------------------------------------------- pytorch_model.bin

TEST(CheckpointErrors, TorchBin) {
  const std::vector<Case> cases = {
      {"truncated", [](const std::string& f) { test::write_bytes(f, test::read_bytes(f).substr(0, 9000)); },
       {"pytorch_model.bin", "zip"}},
      {"not a zip", [](const std::string& f) { test::write_bytes(f, "\x80\x02}q\x00."); },
       {"pytorch_model.bin", "not a zip"}},
      {"central directory damaged",
       [](const std::string& f) { modify_file(f, [](std::string& b) { b[b.rfind("PK\x01\x02") + 2] = 9; }); },
       {"pytorch_model.bin", "central directory"}},
      {"data.pkl fails its CRC",
       [](const std::string& f) { patch_zip_entry(f, "data.pkl", [](std::string& s) { s[60] ^= 1; }, true); },
       {"pytorch_model.bin", "CRC"}},
      {"pickle calls an unknown function",
       [](const std::string& f) {
         patch_zip_entry(f, "data.pkl", [](std::string& s) { replace_once(s, "_rebuild_tensor_v2", "_rebuild_tensor_v9"); });
       },
       {"pytorch_model.bin", "_rebuild_tensor_v9", "convert_bin_to_safetensors.py"}},
      {"pickle opcode outside the subset",
       [](const std::string& f) { patch_zip_entry(f, "data.pkl", [](std::string& s) { s.back() = '\xff'; }); },
       {"pytorch_model.bin", "opcode 0xff"}},
      {"tensor larger than its storage",
       [](const std::string& f) {
         // embed_tokens has size (100, 16): BININT1 100, BININT1 16, TUPLE2 -> 101 rows
         patch_zip_entry(f, "data.pkl", [](std::string& s) { replace_once(s, "KdK\x10\x86", "KeK\x10\x86"); });
       },
       {"pytorch_model.bin", "past its storage"}},
      {"storage record missing",
       [](const std::string& f) {
         modify_file(f, [](std::string& b) {
           for (size_t at = b.find("/data/0"); at != std::string::npos; at = b.find("/data/0", at + 1))
             if (at + 7 < b.size() && !std::isdigit(static_cast<unsigned char>(b[at + 7]))) b[at + 6] = 'X';
         });
       },
       {"pytorch_model.bin", "data/0"}},
  };
  run_cases("parity/variants/bin_ordered", "pytorch_model.bin", cases);
  run_cases("parity/variants/bin_dict", "pytorch_model.bin", cases);
}

TEST(CheckpointErrors, ShardedBinIndexAndShards) {
  std::string dir = test::copy_data_dir("parity/variants/bin_sharded", "err_binidx");
  fs::remove(dir + "/pytorch_model-00002-of-00002.bin");
  expect_load_error(dir, {"pytorch_model.bin.index.json", "pytorch_model-00002-of-00002.bin", "does not exist"});

  dir = test::copy_data_dir("parity/variants/bin_sharded", "err_binidx");
  fs::copy_file(dir + "/pytorch_model-00001-of-00002.bin", dir + "/pytorch_model-00002-of-00002.bin",
                fs::copy_options::overwrite_existing);
  expect_load_error(dir, {"pytorch_model-00002-of-00002.bin", "not listed for this file"});
}

// ---------------------------------------------------------------- the command line

std::pair<int, std::string> inspect(const std::string& dir) { return test::run_zo2("inspect " + dir); }

TEST(CheckpointErrors, InspectPrintsOneLineAndExitsNonZero) {
  auto [ok_rc, ok_out] = inspect(test::data_path("parity/variants/bin_ordered"));
  EXPECT_EQ(ok_rc, 0) << ok_out;
  EXPECT_NE(ok_out.find("pytorch_model.bin, F16"), std::string::npos) << ok_out;

  std::vector<std::string> broken;
  broken.push_back(test::copy_data_dir("parity/small", "cli_st"));
  test::write_bytes(broken.back() + "/model.safetensors", "garbage");
  broken.push_back(test::copy_data_dir("parity/variants/bin_ordered", "cli_bin"));
  test::write_bytes(broken.back() + "/pytorch_model.bin", test::read_bytes(broken.back() + "/pytorch_model.bin").substr(0, 5000));
  for (const std::string& dir : broken) {
    auto [rc, out] = inspect(dir);
    EXPECT_EQ(rc, 1) << out;
    EXPECT_EQ(out.rfind("zo2: error: ", 0), 0u) << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  }
}

}  // namespace
}  // namespace zo2
