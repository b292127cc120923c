#include "launcher/commands.h"
#include "launcher/presets.h"

namespace zo2::cli {

// zo2 demo = zo2 train on the embedded default: the tiny model and data under configs/demo with the run
// file configs/runs/demo.ini. Options given here come first, so they win over those defaults.
int cmd_demo(const Args& args) {
  const std::string root = config_root();
  Args a = args;
  for (const std::string& s : {std::string("--config"), root + "/runs/demo.ini", std::string("--model"),
                               root + "/demo/model", std::string("--data"), root + "/demo/data/train.jsonl",
                               std::string("--eval-data"), root + "/demo/data/test.jsonl"})
    a.push_back(s);
  return cmd_train(a);
}

}  // namespace zo2::cli
