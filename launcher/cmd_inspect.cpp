#include <filesystem>
#include <iostream>
#include <set>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "launcher/commands.h"

namespace zo2::cli {

namespace {
const char* format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::kSafetensors: return "safetensors";
    case WeightFormat::kSafetensorsSharded: return "sharded safetensors";
    case WeightFormat::kBin: return "pytorch_model.bin";
    case WeightFormat::kBinSharded: return "sharded pytorch_model.bin";
  }
  return "?";
}
}  // namespace

int cmd_inspect(const Args& args) {
  po::options_description desc("zo2 inspect");
  desc.add_options()("model", po::value<std::string>()->required(), "checkpoint directory (config.json + weights)");
  po::positional_options_description pos;
  pos.add("model", 1);
  po::variables_map vm;
  if (!parse_options("inspect", args, desc, vm, &pos)) return 0;
  const std::string dir = vm["model"].as<std::string>();
  OptConfig c = load_hf_config((std::filesystem::path(dir) / "config.json").string());
  const WeightFiles files = find_weight_files(dir);
  // Checks every tensor (names, dtypes, shapes, tied head) without converting or copying the weights.
  std::set<std::string> dtypes;
  read_checkpoint_tensors(dir, c, [&](const ParamInfo&, const at::Tensor& t) {
    dtypes.insert(safetensors_dtype_name(t.scalar_type()));
  });
  std::string stored;
  for (const std::string& d : dtypes) stored += (stored.empty() ? "" : "+") + d;
  std::cout << "model " << dir << ": " << c.layers << " layers, hidden " << c.hidden << ", heads " << c.heads
            << ", ffn " << c.ffn << ", vocab " << c.vocab_size << ", " << (c.pre_ln ? "pre-LN" : "post-LN")
            << (c.has_projections() ? ", project_in/out " + std::to_string(c.word_embed_dim) : std::string())
            << (c.tie_word_embeddings ? ", tied head" : ", untied head") << ", " << c.total_params()
            << " parameters; " << format_name(files.format) << ", " << stored << "\n";
  return 0;
}

}  // namespace zo2::cli
