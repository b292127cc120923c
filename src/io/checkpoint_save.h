// Writing Hugging Face OPT checkpoints that transformers' from_pretrained (and zo2) load.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <string>

#include "model/opt_config.h"
#include "model/opt_weights.h"

namespace zo2 {

struct SaveOptions {
  uint64_t max_shard_bytes = 5'000'000'000;  // transformers' default max_shard_size "5GB"
  std::string tokenizer_dir;  // when set, copy vocab.json, merges.txt, tokenizer_config.json and
                              // special_tokens_map.json from here (those that exist)
};

// Writes `dir` (created if needed) as transformers 5 would: model.safetensors, or above max_shard_bytes
// model-0000k-of-0000n.safetensors + model.safetensors.index.json, keys "model.decoder.*" (plus
// lm_head.weight only when untied), stored as `dtype`, then config.json. Every file is written atomically
// (io/atomic_file.h), and config.json -- without which nothing loads the directory -- is removed first and
// written last, so an interrupted save never leaves a directory that passes for a checkpoint. Weight files
// of another layout left from an earlier save are removed. `get` returns each parameter (any dtype and
// device); only one is converted to CPU memory at a time.
using ParamGetter = std::function<at::Tensor(const ParamInfo&)>;
void save_checkpoint_tensors(const std::string& dir, const OptConfig& cfg, at::ScalarType dtype,
                             const SaveOptions& opt, const ParamGetter& get);
void save_checkpoint(const std::string& dir, const OptConfig& cfg, const OptWeights& w, at::ScalarType dtype,
                     const SaveOptions& opt = {});

// transformers' name of a storage dtype in config.json ("float32", "float16", "bfloat16").
const char* hf_dtype_name(at::ScalarType dtype);

}  // namespace zo2
