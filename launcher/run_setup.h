// Pieces shared by the commands that load a model and data (train, eval, ...): option groups and the
// code that turns their values into a model on a device.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "launcher/options.h"
#include "model/opt_config.h"
#include "model/opt_weights.h"

namespace zo2::cli {

// --model/--preset/--init-seed/--device/--dtype/--storage-dtype
void add_model_options(po::options_description& desc);

struct LoadedModel {
  OptConfig cfg;
  OptWeights weights;             // on `device`, in `storage`
  at::Device device = at::kCPU;
  at::ScalarType compute = at::kFloat;
  at::ScalarType storage = at::kFloat;
  std::string source;             // checkpoint directory, or "" for a preset with random weights
};
LoadedModel load_model(const po::variables_map& vm);

// "f32", "fp32", "float32", "f16", "fp16", "float16", "bf16", "bfloat16"; throws naming the option.
at::ScalarType parse_dtype(const std::string& option, const std::string& value);
const char* dtype_name(at::ScalarType t);

}  // namespace zo2::cli
