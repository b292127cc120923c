// zo2 bench: training-step time of a model shape on random tokens, beside the floors measured in the
// same run (pinned copy bandwidth, matmul rate, device copy bandwidth). scripts/bench/ drives it.
// Under zo2run it runs on every rank (data and/or perturbation parallel, one random batch per data
// shard); rank 0 reports throughput, bytes sent per step and every rank's host memory.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "comm/dist.h"
#include "common/collectives.h"
#include "common/device.h"
#include "common/profile.h"
#include "common/error.h"
#include "common/host_memory.h"
#include "data/example.h"
#include "kernels/zo_kernels.h"
#include "launcher/commands.h"
#include "offload/block_file.h"
#include "launcher/run_setup.h"
#include "model/param_source.h"
#include "zo/mezo.h"

namespace zo2::cli {

namespace {

Batch random_batch(const OptConfig& cfg, int64_t B, int64_t T, const at::Device& device, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  std::vector<Example> ex(B);
  std::vector<const Example*> ptr;
  for (int64_t b = 0; b < B; ++b) {
    at::Tensor ids = at::randint(4, cfg.vocab_size, {T}, g, at::TensorOptions().dtype(at::kLong));
    ex[b].candidates.push_back({std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + T), 1});
    ptr.push_back(&ex[b]);
  }
  BatchOptions bo;
  bo.max_len = T;
  return make_batch(ptr, bo).to(device);
}

// Milliseconds of the fused update + perturbation pass over every parameter of a resident model: the
// kernel work of one step with q = 1 (one update direction, two copies).
double kernel_ms(ResidentModel& m, at::ScalarType compute, const at::Device& device) {
  Directions cur;
  cur.key = kernels::step_key(1, 1);
  cur.dirs = {0};
  Update up;
  up.key = kernels::step_key(1, 0);
  up.dirs = {0};
  up.coef = {1e-3f};
  up.lr = 1e-12f;
  at::Tensor scratch;
  auto once = [&] {
    for_each_param(m.config(), m.weights(), [&](const ParamInfo& p, at::Tensor& w) {
      if (!scratch.defined() || scratch.numel() < 2 * w.numel())
        scratch = at::empty({2 * w.numel()}, w.options().dtype(compute));
      update_perturb(w, p.id, &up, &cur, 0, 1, scratch.narrow(0, 0, 2 * w.numel()));
    });
  };
  once();
  synchronize(device);
  std::vector<double> ms;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    once();
    synchronize(device);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[2];
}

}  // namespace

int cmd_bench(const Args& args) {
  po::options_description desc("zo2 bench");
  add_model_options(desc);
  add_offload_options(desc);
  desc.add_options()
      ("batch-size", po::value<int64_t>()->default_value(1), "sequences per step")
      ("max-length", po::value<int64_t>()->default_value(2048), "tokens per sequence")
      ("q", po::value<int64_t>()->default_value(1), "directions per step")
      ("steps", po::value<int64_t>()->default_value(10), "timed steps")
      ("warmup", po::value<int64_t>()->default_value(3), "untimed steps first")
      ("lr", po::value<double>()->default_value(1e-7), "learning rate (non-zero, so updates are applied and written back)")
      ("kernels", po::value<bool>()->default_value(true), "also time the fused kernels alone (resident models)")
      ("eval-steps", po::value<int64_t>()->default_value(0),
       "also time this many evaluation forwards (unperturbed; int8 uploads with --low-bit-reads)")
      ("json", po::value<std::string>()->default_value(""), "append the result as one JSON line to this file")
      ("backend", po::value<std::string>()->default_value("auto"), "auto, single, mpi or nccl (several ranks: zo2run)")
      ("perturbation-parallel", po::value<int64_t>()->default_value(1),
       "P groups of ranks perturb along different directions (1: data parallel, ranks: perturbation parallel)");
  po::variables_map vm;
  if (!parse_options("bench", args, desc, vm)) return 0;
  const int64_t steps = int_option(vm, "steps", 1), warmup = int_option(vm, "warmup", 0);
  const int64_t B = int_option(vm, "batch-size", 1);

  DistOptions dopt;
  dopt.backend = parse_backend(vm["backend"].as<std::string>(), "--backend");
  std::unique_ptr<ProcessGroup> group = init_process_group(dopt);
  ProcessGroup& comm = *group;
  const bool root = comm.rank() == 0;
  ModelSetup ms;
  use_process_group(*group, &ms);
  std::unique_ptr<ZoModel> model = build_model(vm, &ms);
  const at::Device dev = ms.device;
  const int64_t T = std::min(vm["max-length"].as<int64_t>(), ms.cfg.max_positions);
  MezoOptions mo;
  mo.seed = 1;
  mo.q = vm["q"].as<int64_t>();
  mo.lookahead = ms.lookahead;
  mo.perturbation_groups = vm["perturbation-parallel"].as<int64_t>();
  const int64_t W = comm.world(), shards = W / std::max<int64_t>(1, mo.perturbation_groups);
  Batch batch = random_batch(ms.cfg, B, T, dev, 7 + comm.rank() / mo.perturbation_groups);  // one per data shard
  MezoEngine engine(*model, comm, mo, ms.compute);
  const double lr = vm["lr"].as<double>();
  int64_t step = 0;
  for (int64_t i = 0; i < warmup; ++i) engine.step(step++, {batch}, lr);
  synchronize(dev);
  reset_peak_memory(dev);
  auto* off = dynamic_cast<OffloadModel*>(model.get());
  if (off) off->reset_times();
  std::vector<double> times;
  int64_t used = 0;
  profile_reset();
  const uint64_t sent_before = comm.bytes_sent();
  for (int64_t i = 0; i < steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    engine.step(step++, {batch}, lr);
    synchronize(dev);
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    used = std::max(used, device_used_bytes(dev));
  }
  const std::map<std::string, double> phases = profile_report();
  if (std::getenv("ZO2_ALLOC_REPORT")) std::printf("%s", allocator_report(dev).c_str());
  const double bytes_per_step = static_cast<double>(comm.bytes_sent() - sent_before) / static_cast<double>(times.size());
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const double step_ms = sorted[sorted.size() / 2];
  // Every rank's host memory (the shared host store shows in rss_shmem/pss_shmem).
  const HostMemory hm = host_memory();
  const double mine[4] = {double(hm.rss_anon), double(hm.rss_shmem), double(hm.pss_anon), double(hm.pss_shmem)};
  std::vector<double> mem(4 * W);
  comm.allgather(mine, 4, mem.data());
  const double peak = static_cast<double>(peak_memory_bytes(dev));
  const double reserved = static_cast<double>(peak_reserved_bytes(dev));

  // Ceilings measured now, on this machine, and the floors they give (same model as zo2 plan).
  PlanInput pi = plan_input(vm, ms);  // the run's own plan input, with this machine's figures
  pi.h2d_gbps = measure_copy_gbps(dev, true);
  pi.d2h_gbps = measure_copy_gbps(dev, false);
  pi.tflops = measure_matmul_tflops(dev, ms.compute == at::kFloat ? at::kFloat : ms.compute);
  pi.hbm_gbps = measure_device_copy_gbps(dev);
  const Plan plan = make_plan(pi);
  nlohmann::json r = {{"model", ms.cfg.name},         {"params", ms.cfg.total_params()},
                      {"device", dev.str()},          {"dtype", dtype_name(ms.compute)},
                      {"storage", dtype_name(ms.storage)}, {"batch", B},
                      {"seq", T},                     {"q", mo.q},
                      {"streamed_blocks", ms.streamed ? plan.streamed : 0},
                      {"resident_blocks", ms.streamed ? static_cast<int64_t>(plan.resident.size()) : ms.cfg.layers},
                      {"step_ms_median", step_ms},    {"step_ms", times},
                      {"ranks", W},                   {"perturbation_groups", mo.perturbation_groups},
                      {"backend", backend_name(group->backend())},
                      {"shared_host_store", ms.shared},  {"lookahead", ms.lookahead},
                      // distinct samples per second, and (sample, direction) pairs per second
                      {"samples_s", static_cast<double>(shards * B) * 1e3 / step_ms},
                      {"sample_dirs_s", static_cast<double>(W * mo.q * B) * 1e3 / step_ms},
                      {"bytes_sent_per_step", bytes_per_step},
                      {"host_rss_anon_mb", std::vector<double>()},
                      {"host_rss_shmem_mb", std::vector<double>()},
                      {"host_pss_shmem_mb", std::vector<double>()},
                      {"tok_s", static_cast<double>(shards * B * T) * 1e3 / step_ms},
                      {"peak_allocated_mb", peak / (1 << 20)}, {"peak_reserved_mb", reserved / (1 << 20)},
                      {"device_used_mb", used / double(1 << 20)},
                      {"planned_gpu_mb", plan.gpu_bytes / double(1 << 20)},
                      {"h2d_gbps", pi.h2d_gbps},      {"d2h_gbps", pi.d2h_gbps},
                      {"matmul_tflops", pi.tflops},   {"device_copy_gbps", pi.hbm_gbps},
                      {"compute_floor_ms", plan.compute_ms},
                      {"pcie_floor_ms", ms.streamed ? plan.transfer_ms : 0.0}};
  auto* res = dynamic_cast<ResidentModel*>(model.get());
  if (res && vm["kernels"].as<bool>()) {
    const double kms = kernel_ms(*res, ms.compute, dev);
    const double bytes = static_cast<double>(ms.cfg.total_params()) *
                         (2.0 * c10::elementSize(ms.storage) + 2.0 * c10::elementSize(ms.compute));
    r["kernel_ms"] = kms;
    r["kernel_gbps"] = bytes / (kms * 1e-3) / 1e9;
  }
  for (int64_t k = 0; k < W; ++k) {
    r["host_rss_anon_mb"].push_back(mem[4 * k] / (1 << 20));
    r["host_rss_shmem_mb"].push_back(mem[4 * k + 1] / (1 << 20));
    r["host_pss_shmem_mb"].push_back(mem[4 * k + 3] / (1 << 20));
  }
  if (off) {
    const QueueTimes qt = off->times();
    r["uploaded_gb_per_step"] = qt.uploaded_bytes / 1e9 / static_cast<double>(times.size());
    r["written_gb_per_step"] = qt.written_bytes / 1e9 / static_cast<double>(times.size());
    // Busy time of each queue over two more steps (timing events cost a host wait per pass).
    off->reset_times();
    off->set_timing(true);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 2; ++i) engine.step(step++, {batch}, lr);
    synchronize(dev);
    const double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    off->set_timing(false);
    const QueueTimes bt = off->times();
    r["busy_upload"] = bt.upload_ms / wall;
    r["busy_compute_streamed_blocks"] = bt.compute_ms / wall;
    r["busy_writeback"] = bt.writeback_ms / wall;
  }
  if (const int64_t n = vm["eval-steps"].as<int64_t>(); n > 0) {
    // Evaluation forwards: no perturbation, nothing written back; streamed blocks are uploaded as stored
    // (or as int8 with --low-bit-reads, whose copies are refreshed once after the training steps above).
    c10::InferenceMode guard;
    PlainParams plain(ms.compute);
    model->logprobs(plain, batch);
    synchronize(dev);
    if (off) off->reset_times();
    std::vector<double> et;
    for (int64_t i = 0; i < n; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      model->logprobs(plain, batch);
      synchronize(dev);
      et.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(et.begin(), et.end());
    r["eval_ms_median"] = et[et.size() / 2];
    if (off) {
      const double gb = off->times().uploaded_bytes / 1e9 / static_cast<double>(n);
      r["eval_uploaded_gb"] = gb;
      r["eval_pcie_floor_ms"] = gb / pi.h2d_gbps * 1e3;
    }
  }
  if (vm.count("offload-dir") && off) {
    // The disk tier: the blocks' file is read once and (with lazy write-back) partly written per step.
    const DiskRates d = measure_disk_gbps(vm["offload-dir"].as<std::string>());
    r["disk_write_gbps"] = d.write_gbps;
    r["disk_read_gbps"] = d.read_gbps;
    r["disk_floor_ms"] = static_cast<double>(plan.streamed * off->block_bytes()) / (d.read_gbps * 1e9) * 1e3;
  }
  if (!root) return 0;
  std::printf("%s: %s %s, batch %lld x %lld, q %lld, %s%s: step %.1f ms (median of %zu), %.0f tok/s, peak alloc %.0f MiB, "
              "reserved %.0f MiB, device used %.0f MiB\n",
              ms.cfg.name.c_str(), dtype_name(ms.compute), dev.str().c_str(), static_cast<long long>(B),
              static_cast<long long>(T), static_cast<long long>(mo.q),
              ms.streamed ? (std::to_string(plan.streamed) + " blocks streamed").c_str() : "resident",
              ms.lookahead ? ", copies ahead" : "", step_ms,
              times.size(), r["tok_s"].get<double>(), peak / (1 << 20), reserved / (1 << 20), used / double(1 << 20));
  if (W > 1) {
    std::printf("  %lld ranks (%s), %lld perturbation group(s) x %lld data shard(s)%s: %.2f samples/s, %.2f sample-directions/s, "
                "%.0f bytes sent per rank per step\n",
                static_cast<long long>(W), backend_name(group->backend()), static_cast<long long>(mo.perturbation_groups),
                static_cast<long long>(shards), ms.shared ? ", one shared host store per node" : "",
                r["samples_s"].get<double>(), r["sample_dirs_s"].get<double>(), bytes_per_step);
    for (int64_t k = 0; k < W; ++k)
      std::printf("  rank %lld host memory: anon %.0f MiB, shmem %.0f MiB (proportional share %.0f MiB)\n",
                  static_cast<long long>(k), mem[4 * k] / (1 << 20), mem[4 * k + 1] / (1 << 20), mem[4 * k + 3] / (1 << 20));
  }
  std::printf("  floors: compute %.1f ms (%.0f TFLOP/s measured), PCIe %.1f ms (%.1f GB/s H2D measured); ratio %.2fx\n",
              plan.compute_ms, pi.tflops, ms.streamed ? plan.transfer_ms : 0.0, pi.h2d_gbps,
              step_ms / std::max({plan.compute_ms, ms.streamed ? plan.transfer_ms : 0.0, 1e-9}));
  if (r.contains("disk_read_gbps"))
    std::printf("  disk tier: %.2f GB/s read (cold cache), %.2f GB/s written (fdatasync) measured; disk floor %.1f ms; ratio %.2fx\n",
                r["disk_read_gbps"].get<double>(), r["disk_write_gbps"].get<double>(), r["disk_floor_ms"].get<double>(),
                step_ms / r["disk_floor_ms"].get<double>());
  if (r.contains("eval_uploaded_gb"))
    std::printf("  evaluation forward: %.1f ms (median), %.2f GB uploaded, PCIe floor %.1f ms\n",
                r["eval_ms_median"].get<double>(), r["eval_uploaded_gb"].get<double>(),
                r["eval_pcie_floor_ms"].get<double>());
  else if (r.contains("eval_ms_median"))
    std::printf("  evaluation forward: %.1f ms (median)\n", r["eval_ms_median"].get<double>());
  if (r.contains("kernel_ms"))
    std::printf("  fused update+perturb kernels alone: %.2f ms per step (%.0f GB/s; device copy %.0f GB/s)\n",
                r["kernel_ms"].get<double>(), r["kernel_gbps"].get<double>(), pi.hbm_gbps);
  if (!phases.empty()) {
    std::printf("  GPU time per step by phase (ZO2_PROFILE):");
    for (const auto& [name, ms] : phases) {
      std::printf(" %s %.2f ms", name.c_str(), ms / static_cast<double>(times.size()));
      r["phase_ms"][name] = ms / static_cast<double>(times.size());
    }
    std::printf("\n");
  }
  if (r.contains("busy_upload"))
    std::printf("  queue busy fractions over 2 steps: upload %.2f, compute (streamed blocks) %.2f, write-back %.2f\n",
                r["busy_upload"].get<double>(), r["busy_compute_streamed_blocks"].get<double>(),
                r["busy_writeback"].get<double>());
  const std::string json = vm["json"].as<std::string>();
  if (!json.empty()) {
    std::ofstream out(json, std::ios::app);
    ZO2_REQUIRE(out.good(), json, ": cannot write");
    out << r.dump() << "\n";
  }
  return 0;
}

}  // namespace zo2::cli
