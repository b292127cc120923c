#include "launcher/presets.h"

#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace zo2::cli {

namespace fs = std::filesystem;
namespace po = boost::program_options;

namespace {
std::vector<fs::path> roots() {
  std::vector<fs::path> r;
  if (const char* env = std::getenv("ZO2_CONFIG_DIR")) r.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    r.push_back(exe.parent_path() / "configs");
    r.push_back(exe.parent_path().parent_path() / "configs");
  }
  r.push_back(fs::path(ZO2_SOURCE_DIR) / "configs");
  return r;
}
}  // namespace

std::string config_root() {
  for (const fs::path& p : roots())
    if (fs::is_directory(p / "models")) return p.string();
  return (fs::path(ZO2_SOURCE_DIR) / "configs").string();
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  const fs::path dir = fs::path(config_root()) / "models";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".ini") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

OptConfig load_preset(const std::string& name) {
  fs::path file = name;
  if (!(file.extension() == ".ini" && fs::exists(file))) {
    file.clear();
    for (const fs::path& r : roots())
      if (fs::exists(r / "models" / (name + ".ini"))) {
        file = r / "models" / (name + ".ini");
        break;
      }
  }
  if (file.empty()) {
    std::string known;
    for (const std::string& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw_error("unknown model preset '", name, "' (known: ", known, ")");
  }
  OptConfig c;
  po::options_description d;
  d.add_options()("name", po::value(&c.name))("vocab_size", po::value(&c.vocab_size)->required())(
      "hidden_size", po::value(&c.hidden)->required())("num_hidden_layers", po::value(&c.layers)->required())(
      "num_attention_heads", po::value(&c.heads)->required())("ffn_dim", po::value(&c.ffn)->required())(
      "max_position_embeddings", po::value(&c.max_positions)->required())(
      "word_embed_proj_dim", po::value(&c.word_embed_dim)->required())(
      "do_layer_norm_before", po::value(&c.pre_ln)->required())(
      "tie_word_embeddings", po::value(&c.tie_word_embeddings)->default_value(true));
  std::ifstream in(file);
  ZO2_REQUIRE(in.good(), file.string(), ": cannot open");
  try {
    po::variables_map vm;
    po::store(po::parse_config_file(in, d), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw_error(file.string(), ": ", e.what());
  }
  if (c.name.empty()) c.name = file.stem().string();
  c.validate(file.string());
  return c;
}

}  // namespace zo2::cli
