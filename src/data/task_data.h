// MeZO's tasks as token ids: encoding (encode_prompt in mezo: large_models/utils.py), the seeded
// train / dev / eval subsets (sample_train_sets, sample_subset in tasks.py) and the JSON-lines files.
// docs/tasks.md describes the rules.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/example.h"
#include "data/tasks.h"

namespace zo2 {

// Text -> ids with BOS first (Tokenizer::encode with add_bos; MeZO's tokenizer.encode).
using TextEncoder = std::function<std::vector<int64_t>(const std::string&)>;

struct TaskEncoding {
  int64_t max_length = 2048;     // longer sequences keep BOS and their last max_length - 1 tokens
  int64_t max_new_tokens = 50;   // generation tasks keep room for this many new tokens (MeZO does)
};

// One record in every form that training and evaluation use.
struct TaskExample {
  Example candidates;                // classification: one sequence per candidate, gold = correct[0]
  std::vector<int64_t> correct;      // every correct candidate (ReCoRD may have several)
  Example gold_option;               // the gold option alone, loss on its tokens (MeZO's LM-style training;
                                     // generation tasks: prompt + " answer\n")
  std::vector<int64_t> prompt;       // generation tasks: the prompt to continue
  std::vector<std::string> answers;  // generation tasks: gold answers
  int64_t line = 0;                  // source line

  // The training form: every candidate (classification loss), or the gold option alone.
  const Example& train_form(bool as_classification) const {
    return as_classification && candidates.is_classification() ? candidates : gold_option;
  }
};

// MeZO's encoding: each option string is the whole sequence, verbalize(...).strip(' ') with leading
// whitespace removed, tokenised at once; its option tokens are the last
// len(encode(option)) - len(encode(prompt.strip(' '))) of them. Throws "<where>: ..." when an option
// adds no token to its prompt.
TaskExample encode_task(const Task& task, const TaskText& text, const TextEncoder& encode, const TaskEncoding& opt,
                        const std::string& where);

// numpy.random.RandomState(seed).permutation(n), bit for bit: MT19937 seeded as numpy's legacy seeding
// does, Fisher-Yates from the end with numpy's masked rejection sampling (random_interval).
std::vector<int64_t> numpy_permutation(int64_t n, uint32_t seed);

// The records of a task file: with num >= 0 the first `num` of numpy_permutation(records, seed) (MeZO's
// sample_subset: fewer when the file is shorter), with num < 0 every record in file order. Blank lines
// are not records. Only the chosen records are parsed; a bad one throws "<path>:<line>: ...".
std::vector<TaskExample> load_task_file(const Task& task, const std::string& path, int64_t num, uint32_t seed,
                                        const TextEncoder& encode, const TaskEncoding& opt);

struct TaskSplits {
  std::vector<TaskExample> train, dev;
};
// MeZO's sample_train_sets with num_dev: num_train + num_dev records of the train file, dev the last
// num_dev of them (so a short file, like CB's 250 records, leaves fewer for training).
TaskSplits load_train_dev(const Task& task, const std::string& path, int64_t num_train, int64_t num_dev, uint32_t seed,
                          const TextEncoder& encode, const TaskEncoding& opt);

// The examples in one form (for the trainer and evaluate()).
std::vector<Example> train_forms(const std::vector<TaskExample>& xs, bool as_classification);

}  // namespace zo2
