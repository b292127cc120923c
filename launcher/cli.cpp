#include "launcher/cli.h"

#include <cstdio>
#include <iostream>
#include <string>

#include "comm/dist.h"
#include "common/error.h"
#include "launcher/commands.h"

namespace zo2::cli {

namespace {
const Command kCommands[] = {
    {"train", "fine-tune an OPT model with MeZO-SGD", cmd_train},
    {"demo", "fine-tune the embedded tiny model on the CPU and show zero-shot vs fine-tuned accuracy", cmd_demo},
    {"eval", "accuracy or F1 of a model on a MeZO task or custom data", cmd_eval},
    {"plan", "GPU/host memory per component and predicted step time", cmd_plan},
    {"inspect", "load a checkpoint directory and describe it", cmd_inspect},
    {"tokenize", "print the token ids of each input line (--decode: the text of id lines)", cmd_tokenize},
    {"bench", "time training steps on random tokens beside the measured floors", cmd_bench},
    {"convert", "rewrite a checkpoint as safetensors (f32, f16 or bf16)", cmd_convert},
    {"replay", "rebuild fine-tuned weights from the base and the trajectory log", cmd_replay},
};

void usage(std::ostream& os) {
  os << "usage: zo2 <command> [options]   (zo2 <command> --help for its options)\n\ncommands:\n";
  for (const Command& c : kCommands) {
    std::string name = c.name;
    name.resize(12, ' ');
    os << "  " << name << c.summary << "\n";
  }
}
}  // namespace

int run(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(std::cout);
    return 0;
  }
  for (const Command& c : kCommands)
    if (name == c.name) return c.run(Args(argv + 2, argv + argc));
  throw_error("unknown command '", name, "' (zo2 --help lists them)");
}

void abort_peers() { abort_job(1); }

}  // namespace zo2::cli
