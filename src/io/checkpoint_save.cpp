#include "io/checkpoint_save.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "common/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

namespace zo2 {

namespace fs = std::filesystem;

namespace {

const char* const kTokenizerFiles[] = {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"};

// transformers' state-dict order (OPTDecoder registers project_out before project_in; lm_head comes
// last), which decides where shards split.
std::vector<ParamInfo> hf_order(const OptConfig& cfg) {
  std::vector<ParamInfo> t = param_table(cfg), out;
  auto rank = [](const ParamInfo& p) {
    if (p.layer >= 0) return 10;
    switch (p.slot) {
      case kProjectOut: return 2;
      case kProjectIn: return 3;
      case kLmHead: return 20;
      default: return p.slot < kProjectIn ? p.slot : 4;
    }
  };
  std::stable_sort(t.begin(), t.end(), [&](const ParamInfo& a, const ParamInfo& b) { return rank(a) < rank(b); });
  return t;
}

// huggingface_hub's split_state_dict_into_shards: fill shards in order; a tensor that would push the
// current shard past the limit starts a new one; a tensor above the limit gets a shard of its own.
std::vector<std::vector<ParamInfo>> split_shards(const std::vector<ParamInfo>& params, at::ScalarType dtype,
                                                 uint64_t max_bytes) {
  std::vector<std::vector<ParamInfo>> shards;
  std::vector<ParamInfo> cur;
  uint64_t cur_bytes = 0;
  for (const ParamInfo& p : params) {
    uint64_t bytes = c10::elementSize(dtype);
    for (int64_t d : p.shape) bytes *= static_cast<uint64_t>(d);
    if (bytes > max_bytes) {
      shards.push_back({p});
      continue;
    }
    if (cur_bytes + bytes > max_bytes && !cur.empty()) {
      shards.push_back(std::move(cur));
      cur.clear();
      cur_bytes = 0;
    }
    cur.push_back(p);
    cur_bytes += bytes;
  }
  if (!cur.empty()) shards.push_back(std::move(cur));
  return shards;
}

std::string shard_name(size_t i, size_t n) {
  if (n == 1) return "model.safetensors";
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}

// Weight files of any layout zo2 reads (what an earlier save may have left).
bool is_weight_file(const std::string& name) {
  static const std::regex re(
      R"((model\.safetensors|model\.safetensors\.index\.json|model-\d+-of-\d+\.safetensors|)"
      R"(pytorch_model\.bin|pytorch_model\.bin\.index\.json|pytorch_model-\d+-of-\d+\.bin))");
  return std::regex_match(name, re);
}

}  // namespace

const char* hf_dtype_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return "float32";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    default: throw_error("checkpoints are stored as float32, float16 or bfloat16, not ", dtype);
  }
}

void save_checkpoint_tensors(const std::string& dir, const OptConfig& cfg, at::ScalarType dtype,
                             const SaveOptions& opt, const ParamGetter& get) {
  const char* dtype_name = hf_dtype_name(dtype);
  ZO2_REQUIRE(opt.max_shard_bytes > 0, dir, ": max shard size must be positive");
  std::error_code ec;
  fs::create_directories(dir, ec);
  ZO2_REQUIRE(fs::is_directory(dir), dir, ": cannot create directory: ", ec.message());
  const fs::path d(dir);
  remove_file_durable((d / "config.json").string());  // from here on the directory is no checkpoint

  const auto shards = split_shards(hf_order(cfg), dtype, opt.max_shard_bytes);
  std::map<std::string, std::string> weight_map;
  std::map<std::string, ParamInfo> by_name;
  uint64_t total_bytes = 0, total_params = 0;
  std::set<std::string> written;
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string name = shard_name(s, shards.size());
    std::vector<SafetensorsTensorSpec> specs;
    for (const ParamInfo& p : shards[s]) {
      specs.push_back({p.name, dtype, p.shape});
      by_name[p.name] = p;
      weight_map[p.name] = name;
      uint64_t numel = 1;
      for (int64_t n : p.shape) numel *= static_cast<uint64_t>(n);
      total_params += numel;
      total_bytes += numel * c10::elementSize(dtype);
    }
    write_safetensors((d / name).string(), specs, {{"format", "pt"}}, [&](const SafetensorsTensorSpec& spec) {
      const ParamInfo& p = by_name.at(spec.name);
      const at::Tensor t = get(p);
      ZO2_REQUIRE(t.defined() && t.sizes().vec() == p.shape, dir, ": tensor ", p.name, " to save has shape ",
                  t.defined() ? t.sizes() : at::IntArrayRef{}, ", config needs ", at::IntArrayRef(p.shape));
      return t.to(at::kCPU, dtype);
    });
    written.insert(name);
  }
  if (shards.size() > 1) {
    // as transformers writes it: json.dumps(index, indent=2, sort_keys=True) + "\n"
    const nlohmann::json index = {{"metadata", {{"total_parameters", total_params}, {"total_size", total_bytes}}},
                                  {"weight_map", weight_map}};
    write_file_atomic((d / "model.safetensors.index.json").string(), index.dump(2) + "\n");
    written.insert("model.safetensors.index.json");
  }
  for (const auto& entry : fs::directory_iterator(d)) {
    const std::string name = entry.path().filename().string();
    if (is_weight_file(name) && !written.count(name)) remove_file_durable(entry.path().string());
  }
  if (!opt.tokenizer_dir.empty()) {
    ZO2_REQUIRE(fs::is_directory(opt.tokenizer_dir), opt.tokenizer_dir, ": tokenizer directory does not exist");
  }
  if (!opt.tokenizer_dir.empty() && !fs::equivalent(opt.tokenizer_dir, dir, ec)) {
    for (const char* f : kTokenizerFiles) {
      const fs::path src = fs::path(opt.tokenizer_dir) / f;
      if (fs::is_regular_file(src)) copy_file_atomic(src.string(), (d / f).string());
    }
  }
  const std::string tmp = (d / ".config.json.tmp").string();
  save_hf_config(cfg, tmp, dtype_name);
  publish_file(tmp, (d / "config.json").string());
}

void save_checkpoint(const std::string& dir, const OptConfig& cfg, const OptWeights& w, at::ScalarType dtype,
                     const SaveOptions& opt) {
  ZO2_REQUIRE(static_cast<int64_t>(w.blocks.size()) == cfg.layers, dir, ": weights have ", w.blocks.size(),
              " layers, config says ", cfg.layers);
  save_checkpoint_tensors(dir, cfg, dtype, opt, [&](const ParamInfo& p) {
    return p.layer < 0 ? w.outer.slot(p.slot) : w.blocks[p.layer].slot(p.slot);
  });
}

}  // namespace zo2
