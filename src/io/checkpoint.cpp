#include "io/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "common/error.h"
#include "io/safetensors.h"
#include "io/torch_bin.h"

namespace zo2 {

namespace fs = std::filesystem;

namespace {

std::string join(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }

// "model.decoder.x" and "decoder.x" both name decoder parameter x.
std::string canonical(const std::string& key) {
  if (key.rfind("decoder.", 0) == 0) return "model." + key;
  return key;
}

// Keys that carry no parameter and are skipped: fairseq's version marker, kept by early OPT conversions.
bool ignored_key(const std::string& canonical_key) { return canonical_key == "model.decoder.version"; }

// Which parameter a stored key holds, for one config.
class KeyTable {
 public:
  static constexpr size_t kTiedHead = size_t(-1), kIgnored = size_t(-2);
  explicit KeyTable(const OptConfig& cfg) : cfg_(cfg), table_(param_table(cfg)) {
    for (size_t i = 0; i < table_.size(); ++i) index_[table_[i].name] = i;
  }
  const std::vector<ParamInfo>& table() const { return table_; }
  // Index into table(), kTiedHead or kIgnored; throws for keys that are none of these.
  size_t classify(const std::string& key, const std::string& file) const {
    const std::string c = canonical(key);
    auto it = index_.find(c);
    if (it != index_.end()) return it->second;
    if (c == "lm_head.weight" && cfg_.tie_word_embeddings) return kTiedHead;
    if (ignored_key(c)) return kIgnored;
    throw_error(file, ": tensor ", key, " is not a parameter of this OPT config (", cfg_.layers, " layers",
                cfg_.has_projections() ? ", project_in/out" : "", cfg_.has_final_ln() ? ", final LayerNorm" : "",
                ")");
  }
  std::vector<int64_t> shape(size_t i) const {
    return i == kTiedHead ? std::vector<int64_t>{cfg_.vocab_size, cfg_.word_embed_dim} : table_[i].shape;
  }

 private:
  const OptConfig& cfg_;
  std::vector<ParamInfo> table_;
  std::map<std::string, size_t> index_;
};

// weight_map of a sharded checkpoint's index, in file order; a key listed twice is an error.
std::vector<std::pair<std::string, std::string>> read_index(const std::string& path) {
  using nlohmann::json;
  std::ifstream in(path);
  ZO2_REQUIRE(in.good(), path, ": cannot open");
  std::vector<std::pair<std::string, std::string>> entries;
  std::string section, dup;
  std::set<std::string> seen;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::key && parsed.is_string()) {
      if (depth == 1) section = parsed.get<std::string>();
      if (depth == 2 && section == "weight_map" && !seen.insert(parsed.get<std::string>()).second && dup.empty())
        dup = parsed.get<std::string>();
    }
    return true;
  };
  json j;
  try {
    j = json::parse(in, cb);
  } catch (const json::exception& e) {
    throw_error(path, ": invalid JSON: ", e.what());
  }
  ZO2_REQUIRE(dup.empty(), path, ": tensor ", dup, " is listed twice in weight_map");
  ZO2_REQUIRE(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), path,
              ": needs an object 'weight_map' (tensor name -> shard file)");
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    ZO2_REQUIRE(it.value().is_string(), path, ": tensor ", it.key(), ": shard file name must be a string");
    const std::string file = it.value().get<std::string>();
    ZO2_REQUIRE(!file.empty() && file.find('/') == std::string::npos && file != "." && file != "..", path,
                ": tensor ", it.key(), ": shard file '", file, "' must be a plain file name in the same directory");
    entries.emplace_back(it.key(), file);
  }
  return entries;
}

NamedTensors open_weight_file(const std::string& path, WeightFormat format) {
  if (format == WeightFormat::kBin || format == WeightFormat::kBinSharded) return read_torch_bin(path);
  SafetensorsFile f(path);
  NamedTensors out;
  for (const SafetensorsEntry& e : f.header().entries) out.emplace_back(e.name, f.tensor(e.name));
  return out;
}

// Value hash of a tensor (any float dtype), for comparing a tied lm_head with embed_tokens without
// holding both: the two may live in different shards.
uint64_t value_hash(const at::Tensor& t) {
  constexpr int64_t kChunk = 1 << 20;
  const at::Tensor flat = t.reshape(-1);
  const int64_t n = flat.numel();
  uint64_t h = 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(n);
  for (int64_t i = 0; i < n; i += kChunk) {
    const at::Tensor c = flat.slice(0, i, std::min(n, i + kChunk)).to(at::kFloat).contiguous();
    const uint32_t* w = static_cast<const uint32_t*>(c.data_ptr());
    for (int64_t k = 0; k < c.numel(); ++k) {
      h = (h ^ w[k]) * 0x100000001B3ull;
      h ^= h >> 29;
    }
  }
  return h;
}

bool loadable_dtype(at::ScalarType t) { return t == at::kFloat || t == at::kHalf || t == at::kBFloat16; }

}  // namespace

WeightFiles find_weight_files(const std::string& dir) {
  ZO2_REQUIRE(fs::is_directory(dir), dir, ": not a directory");
  const struct {
    const char* name;
    WeightFormat format;
    bool index;
  } kLayouts[] = {
      {"model.safetensors", WeightFormat::kSafetensors, false},
      {"model.safetensors.index.json", WeightFormat::kSafetensorsSharded, true},
      {"pytorch_model.bin", WeightFormat::kBin, false},
      {"pytorch_model.bin.index.json", WeightFormat::kBinSharded, true},
  };
  for (const auto& l : kLayouts) {
    const std::string p = join(dir, l.name);
    if (!fs::exists(p)) continue;
    WeightFiles w{l.format, l.index ? p : std::string(), {}};
    if (!l.index) w.files.push_back(p);
    return w;
  }
  throw_error(dir, ": no weights (expected model.safetensors, model.safetensors.index.json, pytorch_model.bin "
              "or pytorch_model.bin.index.json)");
}

void read_checkpoint_tensors(const std::string& dir, const OptConfig& cfg, const CheckpointVisitor& fn) {
  WeightFiles wf = find_weight_files(dir);
  const KeyTable keys(cfg);
  const std::vector<ParamInfo>& table = keys.table();
  std::vector<std::string> found_in(table.size());  // file each parameter came from
  std::string head_file;                            // file holding a tied lm_head.weight, if any
  std::optional<uint64_t> embed_hash, head_hash;
  bool want_head_check = false;

  // Sharded: the index alone must already name every parameter exactly once.
  std::map<std::string, std::set<std::string>> listed;  // shard file -> stored keys the index puts there
  if (!wf.index.empty()) {
    std::map<std::string, std::string> spelled;  // canonical -> key as listed
    std::vector<bool> present(table.size());
    for (const auto& [key, file] : read_index(wf.index)) {
      const size_t i = keys.classify(key, wf.index);
      auto [it, fresh] = spelled.emplace(canonical(key), key);
      ZO2_REQUIRE(fresh, wf.index, ": tensor ", key, " is listed twice (also as ", it->second, ")");
      if (i < table.size()) present[i] = true;
      want_head_check |= i == KeyTable::kTiedHead;
      listed[file].insert(key);
    }
    for (size_t i = 0; i < table.size(); ++i)
      ZO2_REQUIRE(present[i], wf.index, ": tensor ", table[i].name, " is missing from weight_map");
    for (const auto& [file, names] : listed) {
      const std::string p = join(dir, file);
      ZO2_REQUIRE(fs::is_regular_file(p), wf.index, ": shard ", file, " (holding ", *names.begin(),
                  ") does not exist");
      wf.files.push_back(p);
    }
  }

  for (const std::string& path : wf.files) {
    const NamedTensors tensors = open_weight_file(path, wf.format);
    const std::set<std::string>* expect = wf.index.empty() ? nullptr : &listed[fs::path(path).filename().string()];
    std::vector<std::pair<size_t, at::Tensor>> visit;
    at::Tensor head;
    for (const auto& [name, t] : tensors) {
      const size_t i = keys.classify(name, path);
      ZO2_REQUIRE(!expect || expect->count(name), path, ": tensor ", name, " is not listed for this file in ",
                  wf.index);
      if (i == KeyTable::kIgnored) continue;
      ZO2_REQUIRE(loadable_dtype(t.scalar_type()), path, ": tensor ", name, " has dtype ", t.scalar_type(),
                  "; zo2 reads F32, F16 and BF16");
      ZO2_REQUIRE(t.sizes().vec() == keys.shape(i), path, ": tensor ", name, " has shape ", t.sizes(),
                  ", config.json needs ", at::IntArrayRef(keys.shape(i)));
      std::string& where = i == KeyTable::kTiedHead ? head_file : found_in[i];
      ZO2_REQUIRE(where.empty(), path, ": tensor ", name, " appears twice (also in ", where, ")");
      where = path;
      if (i == KeyTable::kTiedHead)
        head = t;
      else
        visit.emplace_back(i, t);
    }
    if (expect) {
      std::set<std::string> got;
      for (const auto& nt : tensors) got.insert(nt.first);
      for (const std::string& name : *expect)
        ZO2_REQUIRE(got.count(name), path, ": tensor ", name, " is missing (", wf.index, " lists it here)");
    } else {
      want_head_check = head.defined();
      for (size_t i = 0; i < table.size(); ++i)
        ZO2_REQUIRE(!found_in[i].empty(), path, ": tensor ", table[i].name, " is missing");
    }
    std::sort(visit.begin(), visit.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [i, t] : visit) {
      fn(table[i], t);
      if (want_head_check && i == static_cast<size_t>(kEmbedTokens)) embed_hash = value_hash(t);
    }
    if (head.defined()) head_hash = value_hash(head);
  }
  for (size_t i = 0; i < table.size(); ++i)
    ZO2_REQUIRE(!found_in[i].empty(), dir, ": tensor ", table[i].name, " is missing");
  ZO2_REQUIRE(!head_hash || head_hash == embed_hash, head_file,
              ": tensor lm_head.weight differs from model.decoder.embed_tokens.weight, but config.json ties them "
              "(tie_word_embeddings); set it to false to use this head");
}

Checkpoint load_checkpoint(const std::string& dir, const LoadOptions& opt) {
  Checkpoint ck;
  ck.cfg = load_hf_config(join(dir, "config.json"));
  fs::path p(dir);
  ck.cfg.name = (p.filename().empty() ? p.parent_path() : p).filename().string();
  ck.weights.blocks.resize(ck.cfg.layers);
  const auto to = at::TensorOptions().dtype(opt.dtype).device(opt.device);
  read_checkpoint_tensors(dir, ck.cfg, [&](const ParamInfo& info, const at::Tensor& t) {
    at::Tensor& dst = info.layer < 0 ? ck.weights.outer.slot(info.slot) : ck.weights.blocks[info.layer].slot(info.slot);
    dst = at::empty(info.shape, to).copy_(t);
  });
  check_weights(ck.cfg, ck.weights, dir);
  return ck;
}

}  // namespace zo2
