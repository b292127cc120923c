// What `zo2 train` and `zo2 eval` share for MeZO tasks and text data: the tokenizer options and the
// pieces built from them (text encoder, task encoding, evaluation and generation settings).
#pragma once

#include <memory>
#include <string>

#include "data/jsonl_dataset.h"
#include "data/task_data.h"
#include "launcher/options.h"
#include "launcher/run_setup.h"
#include "text/tokenizer.h"
#include "train/task_eval.h"

namespace zo2::cli {

// --task/--tokenizer/--bos-id/--max-new-tokens
void add_task_options(po::options_description& desc);

struct TaskSetup {
  const Task* task = nullptr;           // --task, or null for custom JSON lines
  std::shared_ptr<const Tokenizer> tok;  // null when there is no tokenizer (custom data as token ids)
  TextEncoder encode;                   // with BOS (tasks)
  TaskEncoding encoding;
  TaskEvalOptions eval;                 // batch, stop ids ("\n", EOS), decode
};

// Reads the options above for a model `ms` with sequences of at most `max_length` tokens. The tokenizer
// is --tokenizer, else the --model directory when it has vocab.json; a task needs one. BOS: --bos-id,
// else 0 for tasks (MeZO sets bos_token_id = 0 for OPT) and the model's bos_token_id for custom data.
TaskSetup make_task_setup(const po::variables_map& vm, const ModelSetup& ms, int64_t max_length, int64_t batch_size);

// The value of a sampling-seed option (numpy takes 0 .. 2^32 - 1); throws naming the option.
uint32_t sampling_seed(const po::variables_map& vm, const std::string& option);

// JsonlOptions for custom data: text fields are encoded without BOS (load_jsonl prepends it).
JsonlOptions jsonl_options(const TaskSetup& ts, const ModelSetup& ms);

}  // namespace zo2::cli
