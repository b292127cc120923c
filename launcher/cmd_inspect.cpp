#include <iostream>

#include "io/checkpoint.h"
#include "launcher/commands.h"

namespace zo2::cli {

int cmd_inspect(const Args& args) {
  po::options_description desc("zo2 inspect");
  desc.add_options()("model", po::value<std::string>()->required(), "checkpoint directory (config.json + weights)");
  po::positional_options_description pos;
  pos.add("model", 1);
  po::variables_map vm;
  if (!parse_options("inspect", args, desc, vm, &pos)) return 0;
  Checkpoint ck = load_checkpoint(vm["model"].as<std::string>());
  const OptConfig& c = ck.cfg;
  std::cout << "model " << c.name << ": " << c.layers << " layers, hidden " << c.hidden << ", heads " << c.heads
            << ", ffn " << c.ffn << ", vocab " << c.vocab_size << ", " << (c.pre_ln ? "pre-LN" : "post-LN")
            << (c.has_projections() ? ", project_in/out " + std::to_string(c.word_embed_dim) : std::string())
            << (c.tie_word_embeddings ? ", tied head" : ", untied head") << ", " << c.total_params()
            << " parameters\n";
  return 0;
}

}  // namespace zo2::cli
