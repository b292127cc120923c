#include "launcher/run_setup.h"

#include <algorithm>
#include <cmath>
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
       "write a streamed block back every N updates; missed updates are re-applied after upload (same bits)")
      ("low-bit-reads", po::value<bool>()->default_value(false),
       "evaluation and generation upload streamed blocks in int8 with per-row scales (training stays exact)")
      ("offload-dir", po::value<std::string>(),
       "disk tier: keep the streamed blocks in a scratch file in this directory instead of pinned host memory")
      ("lookahead", po::value<bool>()->default_value(true),
       "GPU, when no block streams: write the next matrix's perturbed copies on a low-priority side stream "
       "while the current matmul runs (two more copies of the largest block matrix)")
      ("share-host-store", po::value<std::string>()->default_value("auto"),
       "ranks of one node share one host copy of the streamed blocks: auto (when possible, else a private copy each), true, false");
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

// The node's shared segment for the streamed blocks, or nullptr (--share-host-store, one rank on the
// node, or auto and the segment could not be made). Collective over m->comm when it is set.
std::shared_ptr<NodeShare> make_share(const po::variables_map& vm, ModelSetup* m) {
  const std::string mode = vm.count("share-host-store") ? vm["share-host-store"].as<std::string>() : "false";
  ZO2_REQUIRE(mode == "auto" || mode == "true" || mode == "false", "option --share-host-store: '", mode,
              "' (auto, true or false)");
  ZO2_REQUIRE(mode != "true" || !vm.count("offload-dir"), "--share-host-store true and --offload-dir exclude each other");
  if (mode == "false" || vm.count("offload-dir") || m->comm == nullptr || m->share.local_world < 2) return nullptr;
  std::vector<int64_t> streamed;
  for (int64_t l = 0; l < m->cfg.layers; ++l)
    if (std::find(m->plan.resident.begin(), m->plan.resident.end(), l) == m->plan.resident.end()) streamed.push_back(l);
  NodeShareOptions opt = m->share;
  opt.pin = m->device.is_cuda();
  std::shared_ptr<NodeShare> share;
  std::string why;
  try {
    share = std::make_shared<NodeShare>(*m->comm, opt, streamed, BlockLayout::make(m->cfg, m->storage).bytes);
  } catch (const Error& e) {
    if (mode == "true") throw;
    why = e.what();
  }
  double failed = why.empty() ? 0 : 1;
  m->comm->allreduce_sum(&failed, 1);  // every rank falls back together
  if (failed > 0) {
    if (!why.empty()) std::cerr << "zo2: warning: " << why << "\n";
    if (m->comm->rank() == 0) std::cerr << "zo2: warning: the ranks of each node keep private host copies of the blocks\n";
    return nullptr;
  }
  m->shared = true;
  return share;
}

// Streamed model: blocks go straight into the host store (one block at a time on the way).
std::unique_ptr<ZoModel> build_streamed(const po::variables_map& vm, ModelSetup* m, uint64_t seed) {
  const PlanInput pi = plan_input(vm, *m);
  m->plan = make_plan(pi);
  ZO2_REQUIRE(m->plan.fits, "--gpu-memory-budget ", pi.budget_gb, " GB is below what must stay on the GPU (",
              m->plan.gpu_bytes / 1e9, " GB with every block streamed; see zo2 plan)");
  std::vector<int64_t> all;
  for (int64_t l = 0; l < m->cfg.layers; ++l) all.push_back(l);
  std::shared_ptr<NodeShare> share = make_share(vm, m);
  std::shared_ptr<BlockFile> file;
  if (vm.count("offload-dir"))
    file = std::make_shared<BlockFile>(vm["offload-dir"].as<std::string>(), m->cfg.layers,
                                       BlockLayout::make(m->cfg, m->storage).bytes);
  HostStore store(m->cfg, m->storage, all, m->device.is_cuda(), share, file);
  OuterWeights outer;
  // Only the writer of a block puts it into the store (random init: the others skip it).
  if (m->source.empty()) {
    outer = random_outer(m->cfg, m->storage, m->device, seed);
    at::Tensor tmp = at::empty({store.layout().bytes}, at::TensorOptions().dtype(at::kByte).device(m->device));
    BlockWeights w = store.layout().view(tmp);
    for (int64_t l = 0; l < m->cfg.layers; ++l) {
      if (!store.writer(l)) continue;
      init_random_block(m->cfg, l, w, seed);  // on the device, then home
      store.buffer(l).copy_(tmp);
    }
  } else {
    // Tensor by tensor from the (memory-mapped) files: no rank holds a whole second copy of the model.
    const at::TensorOptions dev = at::TensorOptions().dtype(m->storage).device(m->device);
    read_checkpoint_tensors(m->source, m->cfg, [&](const ParamInfo& p, const at::Tensor& t) {
      if (p.layer < 0)
        outer.slot(p.slot) = at::empty(p.shape, dev).copy_(t);
      else if (store.writer(p.layer))
        store.block(p.layer).slot(p.slot).copy_(t);
    });
  }
  if (share) m->comm->barrier();  // every block is in the shared store before any rank reads one
  OffloadOptions oo;
  oo.prefetch = m->plan.prefetch;  // the planner may lower it to fit the budget
  oo.overlap = vm["overlap"].as<bool>();
  oo.writeback_every = vm["writeback-every"].as<int64_t>();
  oo.low_bit_reads = vm["low-bit-reads"].as<bool>();
  oo.resident = m->plan.resident;
  m->lookahead = m->plan.lookahead;
  if (m->lookahead) use_high_priority_stream(m->device);  // before the model captures its compute queue
  return std::make_unique<OffloadModel>(m->cfg, std::move(outer), std::move(store), m->device, oo);
}

}  // namespace

double gpu_memory_budget_gb(const po::variables_map& vm) {
  const double gb = vm.count("gpu-memory-budget") ? vm["gpu-memory-budget"].as<double>() : 0.0;
  ZO2_REQUIRE(std::isfinite(gb) && gb >= 0, "--gpu-memory-budget must be a number of GB >= 0 (0: no budget), got ", gb);
  return gb;
}

PlanInput plan_input(const po::variables_map& vm, const ModelSetup& m) {
  PlanInput pi;
  pi.cfg = m.cfg;
  pi.storage = m.storage;
  pi.compute = m.compute;
  pi.prefetch = vm["prefetch"].as<int64_t>();
  pi.budget_gb = gpu_memory_budget_gb(vm);
  pi.stream_all = vm["offload"].as<bool>() || (vm.count("offload-dir") && pi.budget_gb <= 0);
  pi.low_bit_reads = vm["low-bit-reads"].as<bool>();
  pi.lookahead = vm["lookahead"].as<bool>() && m.device.is_cuda();
  if (vm.count("batch-size")) pi.batch = vm["batch-size"].as<int64_t>();
  if (vm.count("max-length")) pi.seq = std::min(vm["max-length"].as<int64_t>(), m.cfg.max_positions);
  if (vm.count("q")) pi.q = vm["q"].as<int64_t>();
  // A node-shared host copy is written back every update (offload_model.cpp).
  if (vm.count("writeback-every")) pi.writeback_every = m.shared ? 1 : vm["writeback-every"].as<int64_t>();
  return pi;
}

void use_process_group(ProcessGroup& group, ModelSetup* m) {
  m->cuda_index = group.device();
  m->comm = &group;
  m->share.local_rank = group.local_rank();
  m->share.local_world = group.local_world();
  m->share.timeout_s = group.collective_timeout_s();
}

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
  m->streamed = vm.count("offload") && (vm["offload"].as<bool>() || gpu_memory_budget_gb(vm) > 0 ||
                                        vm.count("offload-dir"));
  std::unique_ptr<ZoModel> model;
  if (!m->streamed) {
    m->lookahead = m->device.is_cuda() && vm.count("lookahead") && vm["lookahead"].as<bool>();
    if (m->lookahead) use_high_priority_stream(m->device);
  }
  if (m->streamed) {
    model = build_streamed(vm, m, seed);
  } else if (m->source.empty()) {
    model = std::make_unique<ResidentModel>(m->cfg, random_weights(m->cfg, m->storage, m->device, seed));
  } else {
    Checkpoint ck = load_checkpoint(m->source, {m->storage, m->device});
    m->cfg = ck.cfg;
    model = std::make_unique<ResidentModel>(ck.cfg, std::move(ck.weights));
  }
  release_cached_memory(m->device);  // loading and initialisation temporaries
  return model;
}

}  // namespace zo2::cli
