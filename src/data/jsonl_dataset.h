// Custom datasets as JSON lines. Each line is one example in one of these forms:
//   {"ids": [2, 31414, 232]}                       causal LM on token ids (used as given)
//   {"text": "Hello world"}                        causal LM on text (BOS prepended)
//   {"prompt": "Q: ...\nA:", "completion": " 42"}  loss on the completion tokens only
//   {"prompt": "...", "candidates": [" no", " yes"], "label": 1}   classification over candidates
//   and the same with token ids: "prompt_ids", "completion_ids", "candidate_ids".
// Text is encoded without special tokens by `encode`; prompts get BOS in front.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "data/example.h"

namespace zo2 {

using Encoder = std::function<std::vector<int64_t>(const std::string&)>;

struct JsonlOptions {
  int64_t bos_id = 2;
  int64_t vocab_size = 0;   // > 0: ids must be below it
  Encoder encode;           // empty: text fields are an error
};

// Throws zo2::Error naming the file, line and field of the first bad line.
std::vector<Example> load_jsonl(const std::string& path, const JsonlOptions& opt);

}  // namespace zo2
