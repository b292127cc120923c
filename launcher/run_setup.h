// Pieces shared by the commands that load a model (train, eval, ...): option groups and the code that
// turns their values into a model on a device, resident or streamed.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "launcher/options.h"
#include "model/opt_config.h"
#include "comm/dist.h"
#include "common/collectives.h"
#include "offload/node_share.h"
#include "offload/offload_model.h"
#include "offload/planner.h"
#include "zo/zo_model.h"

namespace zo2::cli {

// --model/--preset/--init-seed/--device/--dtype/--storage-dtype
void add_model_options(po::options_description& desc);
// --offload/--gpu-memory-budget/--prefetch/--overlap/--share-host-store
void add_offload_options(po::options_description& desc);

struct ModelSetup {
  OptConfig cfg;
  at::Device device = at::kCPU;
  int cuda_index = -1;       // GPU bound to this rank by the process group (-1: none)
  at::ScalarType compute = at::kFloat;
  at::ScalarType storage = at::kFloat;
  std::string source;        // checkpoint directory, or "" for a preset with random weights
  bool streamed = false;     // blocks live in host memory
  bool lookahead = false;    // out: ZO copies are written ahead (MezoOptions::lookahead)
  Plan plan;                 // when streamed
  // Multi-rank runs: with several ranks on this node (share.local_world > 1) and --share-host-store,
  // the streamed blocks live in one shared copy per node (offload/node_share.h). Set by the command.
  Collectives* comm = nullptr;
  NodeShareOptions share;
  bool shared = false;       // out: the host store is shared
};

// This rank's GPU and node placement from the process group (multi-rank commands, before build_model).
void use_process_group(ProcessGroup& group, ModelSetup* setup);

// --gpu-memory-budget in GB (0 when the command has no such option); throws unless it is finite and >= 0.
double gpu_memory_budget_gb(const po::variables_map& vm);

// The planner's input for the model of `setup` under the run's offload, batch and length options
// (the offload options must be in `vm`); the machine figures stay the planner's defaults.
PlanInput plan_input(const po::variables_map& vm, const ModelSetup& setup);

// Reads the model options (and the offload options when `desc` had them) and builds the model.
std::unique_ptr<ZoModel> build_model(const po::variables_map& vm, ModelSetup* setup);

// "f32", "fp32", "float32", "f16", "fp16", "float16", "bf16", "bfloat16"; throws naming the option.
at::ScalarType parse_dtype(const std::string& option, const std::string& value);
const char* dtype_name(at::ScalarType t);

}  // namespace zo2::cli
