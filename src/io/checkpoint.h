// Hugging Face OPT checkpoints: config.json + weights (safetensors, sharded safetensors, pytorch_model.bin).
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "model/opt_config.h"
#include "model/opt_weights.h"

namespace zo2 {

struct LoadOptions {
  at::ScalarType dtype = at::kFloat;  // every tensor is converted to this
  at::Device device = at::kCPU;
};

struct Checkpoint {
  OptConfig cfg;
  OptWeights weights;
};

// Reads `dir`/config.json and the weights beside it. Keys may carry the prefix "model.decoder." or
// "decoder."; lm_head.weight may be present or absent (tied). Throws zo2::Error naming the file and tensor.
Checkpoint load_checkpoint(const std::string& dir, const LoadOptions& opt = {});

}  // namespace zo2
