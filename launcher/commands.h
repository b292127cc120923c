// Every zo2 subcommand, one file each (launcher/cmd_<name>.cpp). The table in cli.cpp lists them.
#pragma once

#include "launcher/options.h"

namespace zo2::cli {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const Args& args);
};

int cmd_inspect(const Args& args);   // load a checkpoint and describe it
int cmd_train(const Args& args);     // MeZO fine-tuning
int cmd_demo(const Args& args);      // fine-tune the embedded tiny model (README)
int cmd_eval(const Args& args);      // accuracy or F1 of a model on a task
int cmd_plan(const Args& args);      // memory and time plan for a model and GPU budget
int cmd_tokenize(const Args& args);  // token ids of text lines, or text of id lines
int cmd_convert(const Args& args);   // rewrite a checkpoint as safetensors in another dtype
int cmd_bench(const Args& args);     // step time and floors on random tokens
int cmd_replay(const Args& args);    // fine-tuned weights from the base and the trajectory log

}  // namespace zo2::cli
