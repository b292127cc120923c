#include "io/checkpoint.h"

#include <filesystem>

#include "common/error.h"
#include "io/safetensors.h"

namespace zo2 {

namespace fs = std::filesystem;

namespace {
// "model.decoder.x" and "decoder.x" both name decoder parameter x.
std::string canonical(const std::string& key) {
  if (key.rfind("model.decoder.", 0) == 0) return key;
  if (key.rfind("decoder.", 0) == 0) return "model." + key;
  return key;
}
}  // namespace

Checkpoint load_checkpoint(const std::string& dir, const LoadOptions& opt) {
  Checkpoint ck;
  ck.cfg = load_hf_config((fs::path(dir) / "config.json").string());
  ck.cfg.name = fs::path(dir).filename().string();
  const std::string file = (fs::path(dir) / "model.safetensors").string();
  SafetensorsFile st(file);
  std::map<std::string, std::string> names;
  for (const SafetensorsEntry& e : st.header().entries) names[canonical(e.name)] = e.name;
  ck.weights.blocks.resize(ck.cfg.layers);
  for (const ParamInfo& p : param_table(ck.cfg)) {
    auto it = names.find(p.name);
    at::Tensor& dst = p.layer < 0 ? ck.weights.outer.slot(p.slot) : ck.weights.blocks[p.layer].slot(p.slot);
    if (it == names.end()) throw_error(file, ": tensor ", p.name, " is missing");
    dst = st.tensor(it->second).to(opt.device, opt.dtype, /*non_blocking=*/false, /*copy=*/true);
  }
  check_weights(ck.cfg, ck.weights, file);
  return ck;
}

}  // namespace zo2
