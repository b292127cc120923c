#include <filesystem>
#include <iostream>

#include "common/error.h"
#include "io/checkpoint.h"
#include "launcher/commands.h"
#include "launcher/presets.h"
#include "launcher/run_setup.h"
#include "offload/planner.h"

namespace zo2::cli {

int cmd_plan(const Args& args) {
  po::options_description desc("zo2 plan");
  desc.add_options()
      ("model", po::value<std::string>(), "model preset (opt-125m ... opt-175b) or a checkpoint directory")
      ("gpu-memory-budget", po::value<double>()->default_value(0), "GB of GPU memory (0: stream every block)")
      ("batch", po::value<int64_t>()->default_value(1), "sequences per micro-batch")
      ("seq", po::value<int64_t>()->default_value(2048), "tokens per sequence")
      ("q", po::value<int64_t>()->default_value(1), "directions per step")
      ("prefetch", po::value<int64_t>()->default_value(1), "streamed blocks uploaded ahead")
      ("writeback-every", po::value<int64_t>()->default_value(4),
       "a streamed block is written back every N updates (train's --writeback-every)")
      ("storage-dtype", po::value<std::string>()->default_value("f16"), "f32, f16 or bf16")
      ("low-bit-reads", po::value<bool>()->default_value(false), "count the int8 copies of --low-bit-reads")
      ("lookahead", po::value<bool>()->default_value(true), "count the copies written ahead (train's --lookahead, GPU)")
      ("offload-dir", po::value<std::string>(), "plan the disk tier (blocks in a file there; nothing is created)")
      ("disk-gbps", po::value<double>()->default_value(2.0), "with --offload-dir: the disk's read GB/s")
      ("dtype", po::value<std::string>()->default_value("f16"), "compute dtype")
      ("h2d-gbps", po::value<double>()->default_value(55.0), "pinned host-to-device GB/s")
      ("d2h-gbps", po::value<double>()->default_value(55.0), "pinned device-to-host GB/s")
      ("tflops", po::value<double>()->default_value(500.0), "achieved matmul TFLOP/s")
      ("hbm-gbps", po::value<double>()->default_value(2500.0), "achieved device memory GB/s");
  po::positional_options_description pos;
  pos.add("model", 1);
  po::variables_map vm;
  if (!parse_options("plan", args, desc, vm, &pos)) return 0;
  ZO2_REQUIRE(vm.count("model"), "zo2 plan: give a model preset or directory (--model)");
  const std::string name = vm["model"].as<std::string>();
  PlanInput in;
  std::error_code ec;
  in.cfg = std::filesystem::exists(name + "/config.json", ec) ? load_hf_config(name + "/config.json") : load_preset(name);
  if (in.cfg.name == "opt") in.cfg.name = name;
  in.storage = parse_dtype("storage-dtype", vm["storage-dtype"].as<std::string>());
  in.compute = parse_dtype("dtype", vm["dtype"].as<std::string>());
  in.batch = vm["batch"].as<int64_t>();
  in.seq = vm["seq"].as<int64_t>();
  in.q = vm["q"].as<int64_t>();
  in.prefetch = vm["prefetch"].as<int64_t>();
  in.writeback_every = vm["writeback-every"].as<int64_t>();
  in.budget_gb = gpu_memory_budget_gb(vm);
  in.stream_all = in.budget_gb <= 0;
  in.low_bit_reads = vm["low-bit-reads"].as<bool>();
  in.lookahead = vm["lookahead"].as<bool>();
  if (vm.count("offload-dir")) {
    in.disk_gbps = vm["disk-gbps"].as<double>();
    ZO2_REQUIRE(in.disk_gbps > 0, "zo2 plan: --disk-gbps must be > 0, got ", in.disk_gbps);
  }
  in.h2d_gbps = vm["h2d-gbps"].as<double>();
  in.d2h_gbps = vm["d2h-gbps"].as<double>();
  in.tflops = vm["tflops"].as<double>();
  in.hbm_gbps = vm["hbm-gbps"].as<double>();
  std::cout << format_plan(in, make_plan(in));
  return 0;
}

}  // namespace zo2::cli
