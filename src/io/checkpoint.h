// Hugging Face OPT checkpoints: config.json + weights (safetensors, sharded safetensors, pytorch_model.bin,
// sharded .bin). docs/file-formats.md describes what is accepted.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

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

// The weight files of a checkpoint directory, in transformers' order of preference.
enum class WeightFormat { kSafetensors, kSafetensorsSharded, kBin, kBinSharded };
struct WeightFiles {
  WeightFormat format;
  std::string index;               // the *.index.json (sharded formats only)
  std::vector<std::string> files;  // paths of the weight files
};
// Throws zo2::Error naming `dir` when it holds none of model.safetensors, model.safetensors.index.json,
// pytorch_model.bin, pytorch_model.bin.index.json.
WeightFiles find_weight_files(const std::string& dir);

// Reads the weights in `dir` for `cfg` and calls `fn` once per parameter of param_table(cfg) with a CPU
// tensor in the stored dtype (F32, F16 or BF16; possibly a non-contiguous view of a memory-mapped file
// or of a loaded shard, valid only during the call: copy it). Calls come file by file, in id order
// within a file; at most one .bin shard is in memory at a time. Every name, dtype and shape of a file
// (and the whole index of a sharded checkpoint) is checked before the first call for it.
// Keys may be "model.decoder.*" or "decoder.*". lm_head.weight is required when cfg is untied; when cfg
// ties it, it may be absent or present, and if present must equal embed_tokens. Any other key is an error.
// Throws zo2::Error naming the file and tensor at fault.
using CheckpointVisitor = std::function<void(const ParamInfo&, const at::Tensor& cpu_view)>;
void read_checkpoint_tensors(const std::string& dir, const OptConfig& cfg, const CheckpointVisitor& fn);

// Reads `dir`/config.json and the weights beside it into tensors of opt.dtype on opt.device.
Checkpoint load_checkpoint(const std::string& dir, const LoadOptions& opt = {});

}  // namespace zo2
