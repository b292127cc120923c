#include "launcher/run_setup.h"

#include <iostream>

#include "common/device.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "launcher/presets.h"
#include "zo/init.h"

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

void add_offload_options(po::options_description& desc) {
  desc.add_options()
      ("offload", po::value<bool>()->default_value(false), "stream every decoder block from host memory (ZO2)")
      ("gpu-memory-budget", po::value<double>()->default_value(0), "GB of GPU memory: keep as many blocks resident as fit, stream the rest")
      ("prefetch", po::value<int64_t>()->default_value(1), "streamed blocks uploaded ahead of the computing one")
      ("overlap", po::value<bool>()->default_value(true), "copies on their own queues (false: the same schedule serially)")
      ("writeback-every", po::value<int64_t>()->default_value(4),
       "write a streamed block back every N updates; missed updates are re-applied after upload (same bits)");
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

namespace {

// Streamed model: blocks go straight into the host store (one block at a time on the way).
std::unique_ptr<ZoModel> build_streamed(const po::variables_map& vm, ModelSetup* m, uint64_t seed) {
  PlanInput pi;
  pi.cfg = m->cfg;
  pi.storage = m->storage;
  pi.compute = m->compute;
  pi.prefetch = vm["prefetch"].as<int64_t>();
  pi.budget_gb = vm["gpu-memory-budget"].as<double>();
  pi.stream_all = vm["offload"].as<bool>();
  if (vm.count("batch-size")) pi.batch = vm["batch-size"].as<int64_t>();
  if (vm.count("max-length")) pi.seq = std::min(vm["max-length"].as<int64_t>(), m->cfg.max_positions);
  if (vm.count("q")) pi.q = vm["q"].as<int64_t>();
  m->plan = make_plan(pi);
  ZO2_REQUIRE(m->plan.fits, "--gpu-memory-budget ", pi.budget_gb, " GB is below what must stay on the GPU (",
              m->plan.gpu_bytes / 1e9, " GB with every block streamed; see zo2 plan)");
  std::vector<int64_t> all;
  for (int64_t l = 0; l < m->cfg.layers; ++l) all.push_back(l);
  HostStore store(m->cfg, m->storage, all, m->device.is_cuda());
  OuterWeights outer;
  if (m->source.empty()) {
    outer = random_outer(m->cfg, m->storage, m->device, seed);
    at::Tensor tmp = at::empty({store.layout().bytes}, at::TensorOptions().dtype(at::kByte).device(m->device));
    BlockWeights w = store.layout().view(tmp);
    for (int64_t l = 0; l < m->cfg.layers; ++l) {
      init_random_block(m->cfg, l, w, seed);  // on the device, then home
      store.buffer(l).copy_(tmp);
    }
  } else {
    Checkpoint ck = load_checkpoint(m->source, {m->storage, at::kCPU});
    for (int64_t l = 0; l < m->cfg.layers; ++l)
      for (int s = 0; s < BlockWeights::kSlots; ++s) store.block(l).slot(s).copy_(ck.weights.blocks[l].slot(s));
    for (int id = 0; id < OuterWeights::kSlots; ++id)
      if (ck.weights.outer.slot(id).defined()) outer.slot(id) = ck.weights.outer.slot(id).to(m->device);
  }
  OffloadOptions oo;
  oo.prefetch = pi.prefetch;
  oo.overlap = vm["overlap"].as<bool>();
  oo.writeback_every = vm["writeback-every"].as<int64_t>();
  oo.resident = m->plan.resident;
  return std::make_unique<OffloadModel>(m->cfg, std::move(outer), std::move(store), m->device, oo);
}

}  // namespace

std::unique_ptr<ZoModel> build_model(const po::variables_map& vm, ModelSetup* m) {
  ZO2_REQUIRE(vm.count("model") + vm.count("preset") == 1, "give exactly one of --model DIR or --preset NAME");
  m->device = parse_device(vm["device"].as<std::string>());
  // A multi-rank job binds each rank to its own GPU; "auto" and "cuda" mean that one.
  const std::string dev = vm["device"].as<std::string>();
  if (m->device.is_cuda() && m->cuda_index >= 0 && (dev == "auto" || dev == "cuda"))
    m->device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(m->cuda_index));
  const std::string dt = vm["dtype"].as<std::string>();
  m->compute = dt == "auto" ? (m->device.is_cuda() ? at::kHalf : at::kFloat) : parse_dtype("dtype", dt);
  const std::string st = vm["storage-dtype"].as<std::string>();
  m->storage = st == "same" ? m->compute : parse_dtype("storage-dtype", st);
  ZO2_REQUIRE(m->device.is_cuda() || m->compute != at::kHalf,
              "--dtype f16 needs a CUDA device; on the CPU use f32 or bf16");
  const uint64_t seed = vm["init-seed"].as<uint64_t>();
  if (vm.count("model")) {
    m->source = vm["model"].as<std::string>();
    m->cfg = load_hf_config(m->source + "/config.json");
  } else {
    m->cfg = load_preset(vm["preset"].as<std::string>());
  }
  m->streamed = vm.count("offload") &&
                (vm["offload"].as<bool>() || vm["gpu-memory-budget"].as<double>() > 0);
  if (m->streamed) return build_streamed(vm, m, seed);
  if (m->source.empty()) return std::make_unique<ResidentModel>(m->cfg, random_weights(m->cfg, m->storage, m->device, seed));
  Checkpoint ck = load_checkpoint(m->source, {m->storage, m->device});
  m->cfg = ck.cfg;
  return std::make_unique<ResidentModel>(ck.cfg, std::move(ck.weights));
}

}  // namespace zo2::cli
