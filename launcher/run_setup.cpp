#include "launcher/run_setup.h"

#include "common/device.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "launcher/presets.h"

namespace zo2::cli {

void add_model_options(po::options_description& desc) {
  desc.add_options()
      ("model", po::value<std::string>(), "Hugging Face OPT directory (config.json + weights)")
      ("preset", po::value<std::string>(), "model shape from configs/models/<name>.ini, random weights")
      ("init-seed", po::value<uint64_t>()->default_value(0), "seed of the random weights of --preset")
      ("device", po::value<std::string>()->default_value("auto"), "auto, cpu, cuda or cuda:N")
      ("dtype", po::value<std::string>()->default_value("auto"), "compute dtype: f32, f16, bf16 (auto: f16 on GPU, f32 on CPU)")
      ("storage-dtype", po::value<std::string>()->default_value("same"), "dtype the weights are kept in (same = --dtype)");
}

at::ScalarType parse_dtype(const std::string& option, const std::string& v) {
  if (v == "f32" || v == "fp32" || v == "float32") return at::kFloat;
  if (v == "f16" || v == "fp16" || v == "float16") return at::kHalf;
  if (v == "bf16" || v == "bfloat16") return at::kBFloat16;
  throw_error("option --", option, ": invalid dtype '", v, "' (f32, f16 or bf16)");
}

const char* dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "f32";
    case at::kHalf: return "f16";
    case at::kBFloat16: return "bf16";
    default: return "?";
  }
}

LoadedModel load_model(const po::variables_map& vm) {
  ZO2_REQUIRE(vm.count("model") + vm.count("preset") == 1, "give exactly one of --model DIR or --preset NAME");
  LoadedModel m;
  m.device = parse_device(vm["device"].as<std::string>());
  const std::string dt = vm["dtype"].as<std::string>();
  m.compute = dt == "auto" ? (m.device.is_cuda() ? at::kHalf : at::kFloat) : parse_dtype("dtype", dt);
  const std::string st = vm["storage-dtype"].as<std::string>();
  m.storage = st == "same" ? m.compute : parse_dtype("storage-dtype", st);
  ZO2_REQUIRE(m.device.is_cuda() || m.compute != at::kHalf,
              "--dtype f16 needs a CUDA device; on the CPU use f32 or bf16");
  if (vm.count("model")) {
    m.source = vm["model"].as<std::string>();
    Checkpoint ck = load_checkpoint(m.source, {m.storage, m.device});
    m.cfg = std::move(ck.cfg);
    m.weights = std::move(ck.weights);
  } else {
    m.cfg = load_preset(vm["preset"].as<std::string>());
    m.weights = random_weights(m.cfg, m.storage, m.device, vm["init-seed"].as<uint64_t>());
  }
  return m;
}

}  // namespace zo2::cli
