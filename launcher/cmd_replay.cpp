// zo2 replay: the fine-tuned weights from the base checkpoint and the trajectory log (docs/checkpoints.md),
// bitwise those the run trained on the same device type. --bench times replay on random weights.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "common/device.h"
#include "common/error.h"
#include "launcher/commands.h"
#include "launcher/run_setup.h"
#include "train/checkpointing.h"
#include "train/trajectory.h"

namespace zo2::cli {

namespace {

// build_model's options for the base: a directory or "preset:NAME:SEED" (what the log's header says).
std::unique_ptr<ZoModel> build_base(const po::variables_map& vm, const std::string& base, at::ScalarType storage,
                                    ModelSetup* ms) {
  Args a;
  if (base.rfind("preset:", 0) == 0) {
    const size_t colon = base.rfind(':');
    ZO2_REQUIRE(colon > 7, "base '", base, "' is not preset:NAME:SEED");
    a = {"--preset", base.substr(7, colon - 7), "--init-seed", base.substr(colon + 1)};
  } else {
    a = {"--model", base};
  }
  // The update runs in the storage dtype; the compute dtype only sizes the offload plan.
  const char* st = storage == at::kFloat ? "f32" : storage == at::kHalf ? "f16" : "bf16";
  for (const std::string& s : Args{"--device", vm["device"].as<std::string>(), "--dtype", "f32", "--storage-dtype", st})
    a.push_back(s);
  for (const char* o : {"offload", "overlap"}) a.insert(a.end(), {std::string("--") + o, vm[o].as<bool>() ? "true" : "false"});
  for (const char* o : {"prefetch", "writeback-every"})
    a.insert(a.end(), {std::string("--") + o, std::to_string(vm[o].as<int64_t>())});
  a.insert(a.end(), {"--gpu-memory-budget", std::to_string(vm["gpu-memory-budget"].as<double>())});
  po::options_description desc;
  add_model_options(desc);
  add_offload_options(desc);
  po::variables_map mv;
  parse_options("replay", a, desc, mv);
  return build_model(mv, ms);
}

// Synthetic records for --bench: g of a few units, lr 1e-6 (as fine-tuning uses).
std::vector<TrajectoryRecord> bench_records(int64_t steps, int64_t dirs) {
  std::vector<TrajectoryRecord> recs(static_cast<size_t>(steps));
  for (int64_t s = 0; s < steps; ++s) {
    recs[s].step = s;
    recs[s].lr = 1e-6f;
    for (int64_t d = 0; d < dirs; ++d) recs[s].g.push_back(3.0 * std::sin(1.0 + s * 7.0 + d));
  }
  return recs;
}

}  // namespace

int cmd_replay(const Args& args) {
  po::options_description desc("zo2 replay");
  desc.add_options()
      ("base", po::value<std::string>(), "base checkpoint the run started from (default: the log's, if a preset)")
      ("trajectory", po::value<std::string>(), "trajectory log of the run (trajectory.zo2traj)")
      ("out", po::value<std::string>(), "write the fine-tuned weights here (Hugging Face checkpoint)")
      ("steps", po::value<int64_t>(), "replay only the first N steps (--bench: steps to time, default 100)")
      ("device", po::value<std::string>()->default_value("auto"), "auto, cpu, cuda or cuda:N")
      ("bench", po::bool_switch(), "time replay of synthetic steps on random weights (--preset)")
      ("preset", po::value<std::string>(), "--bench: model shape (configs/models/<name>.ini)")
      ("storage-dtype", po::value<std::string>()->default_value("f16"), "--bench: f32, f16 or bf16")
      ("q", po::value<int64_t>()->default_value(1), "--bench: directions per step")
      ("json", po::value<std::string>()->default_value(""), "--bench: append the result as a JSON line to this file");
  add_offload_options(desc);
  po::variables_map vm;
  if (!parse_options("replay", args, desc, vm)) return 0;
  const bool bench = vm["bench"].as<bool>();

  TrajectoryLog log;
  if (bench) {
    ZO2_REQUIRE(vm.count("preset") || vm.count("base"), "zo2 replay --bench: give --preset NAME (or --base DIR)");
    log.header.mezo.q = vm["q"].as<int64_t>();
    log.header.mezo.seed = 1;
    log.header.storage = parse_dtype("storage-dtype", vm["storage-dtype"].as<std::string>());
    log.header.base = vm.count("base") ? vm["base"].as<std::string>() : "preset:" + vm["preset"].as<std::string>() + ":0";
    log.records = bench_records(vm.count("steps") ? vm["steps"].as<int64_t>() + 2 : 102, log.header.dirs());
  } else {
    ZO2_REQUIRE(vm.count("trajectory") && vm.count("out"), "zo2 replay: give --trajectory FILE and --out DIR");
    const std::string path = vm["trajectory"].as<std::string>();
    log = read_trajectory(path);
    if (!log.dropped.empty()) std::cerr << "zo2: replay: " << path << ": ignoring " << log.dropped << "\n";
    ZO2_REQUIRE(vm.count("base") || log.header.base.rfind("preset:", 0) == 0, "zo2 replay: give --base DIR (",
                path, " was trained from ", log.header.base, ")");
  }
  const TrajectoryHeader& h = log.header;
  const std::string base = vm.count("base") ? vm["base"].as<std::string>() : h.base;

  ModelSetup ms;
  std::unique_ptr<ZoModel> model = build_base(vm, base, h.storage, &ms);
  size_t begin = 0, end = log.records.size();
  if (bench) {
    replay(*model, h, log.records, 0, 2, ms.compute);  // warm-up
    begin = 2;
  } else {
    TrajectoryHeader shape = h;
    shape.cfg = ms.cfg;
    const std::string diff = trajectory_mismatch(h, shape, false);
    ZO2_REQUIRE(diff.empty(), base, ": not the model of ", vm["trajectory"].as<std::string>(), " (", diff, ")");
    const uint64_t have = model_checksum(*model);
    ZO2_REQUIRE(have == h.base_checksum, base, ": weights (checksum ", checksum_hex(have), " as ",
                c10::toString(h.storage), ") are not the base the run started from (", h.base, ", checksum ",
                checksum_hex(h.base_checksum), ")");
    if (vm.count("steps")) end = std::min(end, static_cast<size_t>(std::max<int64_t>(0, vm["steps"].as<int64_t>())));
  }
  synchronize(ms.device);
  const auto t0 = std::chrono::steady_clock::now();
  replay(*model, h, log.records, begin, end, ms.compute);
  synchronize(ms.device);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double n = static_cast<double>(end - begin), rate = n / sec;
  // The update reads and writes every stored weight once per step.
  const double gbps = 2.0 * static_cast<double>(ms.cfg.total_params()) * c10::elementSize(h.storage) * rate / 1e9;
  std::printf("replayed %zu steps of %s (%s, %s%s) in %.3f s: %.2f steps/s, %.3g GB/s of weights read+written\n",
              end - begin, ms.cfg.name.c_str(), c10::toString(h.storage), ms.device.str().c_str(),
              ms.streamed ? ", streamed" : "", sec, rate, gbps);
  if (bench) {
    const std::string json = vm["json"].as<std::string>();
    if (!json.empty()) {
      std::ofstream out(json, std::ios::app);
      ZO2_REQUIRE(out.good(), json, ": cannot write");
      out << nlohmann::json{{"model", ms.cfg.name}, {"params", ms.cfg.total_params()}, {"device", ms.device.str()},
                            {"storage", c10::toString(h.storage)}, {"q", h.mezo.q}, {"streamed", ms.streamed},
                            {"steps", end - begin}, {"seconds", sec}, {"steps_per_s", rate}, {"weight_gbps", gbps}}
                 .dump()
          << "\n";
    }
    return 0;
  }
  const std::string out = vm["out"].as<std::string>();
  const std::string tok = std::filesystem::exists(std::filesystem::path(base) / "vocab.json") ? base : "";
  save_model(*model, out, h.storage, tok);
  std::cout << "wrote " << out << " (weights after step " << (end == 0 ? h.first_step - 1 : log.records[end - 1].step)
            << ", checksum " << checksum_hex(model_checksum(*model)) << ")\n";
  return 0;
}

}  // namespace zo2::cli
