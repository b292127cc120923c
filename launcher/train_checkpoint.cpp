#include "launcher/train_checkpoint.h"

#include <filesystem>
#include <iostream>

#include "common/error.h"

namespace zo2::cli {

namespace {

// FNV-1a over the token ids of the training set: the data order is a function of the set and the seed.
uint64_t data_hash(const std::vector<Example>& set) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&](int64_t v) {
    for (int i = 0; i < 8; ++i) h = (h ^ ((static_cast<uint64_t>(v) >> (8 * i)) & 0xff)) * 1099511628211ull;
  };
  for (const Example& e : set) {
    mix(e.gold);
    mix(static_cast<int64_t>(e.candidates.size()));
    for (const Sequence& s : e.candidates) {
      mix(s.target_begin);
      mix(static_cast<int64_t>(s.ids.size()));
      for (int64_t id : s.ids) mix(id);
    }
  }
  return h;
}

// Everything besides the log's MeZO fields that decides the run's arithmetic (compared on resume).
nlohmann::json run_settings(const ModelSetup& ms, const TrainOptions& to, const std::vector<Example>& train_set,
                            Collectives& comm) {
  nlohmann::json j = {{"data_seed", to.data_seed},
                      {"batch_size", to.batch_size},
                      {"micro_batches", to.micro_batches},
                      {"max_length", to.batch.max_len},
                      {"lr_schedule", lr_kind_name(to.lr.kind)},
                      {"lr", to.lr.base},
                      {"warmup", to.lr.warmup},
                      {"compute_dtype", dtype_name(ms.compute)},
                      {"ranks", comm.world()},
                      {"device_type", ms.device.is_cuda() ? "cuda" : "cpu"},
                      {"train_examples", train_set.size()},
                      {"train_data", checksum_hex(data_hash(train_set))}};
  // Linear and cosine schedules depend on the run's length; a constant one may be extended.
  if (to.lr.kind != LrSchedule::Kind::kConstant) j["lr_total_steps"] = to.lr.total;
  return j;
}

}  // namespace

void add_checkpoint_options(po::options_description& d) {
  d.add_options()
      ("out", po::value<std::string>(), "run directory: checkpoint-<step>/ (Hugging Face) and trajectory.zo2traj")
      ("resume", po::value<std::string>(), "continue the run in this directory (same options as the run)")
      ("save-every", po::value<int64_t>()->default_value(0), "checkpoint every N steps (0: only at the end)")
      ("keep", po::value<int64_t>()->default_value(2), "newest checkpoints kept (0: all)")
      ("trajectory", po::value<std::string>(), "trajectory log path (default: <out>/trajectory.zo2traj)")
      ("trajectory-sync-every", po::value<int64_t>()->default_value(1), "fsync the trajectory log every N steps");
}

RunFiles prepare_run_files(po::variables_map& vm, int rank) {
  RunFiles rf;
  CheckpointOptions& o = rf.opt;
  const bool resume = vm.count("resume") > 0;
  if (vm.count("out")) o.out = vm["out"].as<std::string>();
  if (resume) {
    const std::string r = vm["resume"].as<std::string>();
    ZO2_REQUIRE(o.out.empty() || std::filesystem::path(o.out) == std::filesystem::path(r),
                "--resume ", r, " and --out ", o.out, " name different run directories");
    o.out = r;
  }
  if (vm.count("trajectory")) o.trajectory = vm["trajectory"].as<std::string>();
  o.save_every = vm["save-every"].as<int64_t>();
  o.keep = vm["keep"].as<int64_t>();
  o.sync_every = vm["trajectory-sync-every"].as<int64_t>();
  ZO2_REQUIRE(o.save_every >= 0 && o.keep >= 0 && o.sync_every >= 1,
              "--save-every and --keep must be >= 0, --trajectory-sync-every >= 1");
  ZO2_REQUIRE(o.save_every == 0 || !o.out.empty(), "--save-every needs --out DIR");
  if (vm.count("model")) rf.base = vm["model"].as<std::string>();
  else if (vm.count("preset"))
    rf.base = "preset:" + vm["preset"].as<std::string>() + ":" + std::to_string(vm["init-seed"].as<uint64_t>());
  o.tokenizer_dir = vm.count("tokenizer") ? vm["tokenizer"].as<std::string>()
                                          : (vm.count("model") ? vm["model"].as<std::string>() : "");
  if (!o.tokenizer_dir.empty() && !std::filesystem::exists(std::filesystem::path(o.tokenizer_dir) / "vocab.json"))
    o.tokenizer_dir.clear();
  rf.active = !o.log_path().empty();
  if (!rf.active || (!resume && rank != 0)) return rf;
  rf.plan = plan_resume(o);
  if (!resume) {
    ZO2_REQUIRE(!rf.plan.found, rf.plan.log_path, ": exists: continue that run with --resume ",
                o.out.empty() ? o.log_path() : o.out, ", or write to another place");
    return rf;
  }
  if (!rf.plan.checkpoint.empty()) {
    // build_model then loads the checkpoint (a Hugging Face directory) instead of the base.
    vm.erase("model");
    vm.erase("preset");
    vm.insert({"model", po::variable_value(boost::any(rf.plan.checkpoint), false)});
  }
  return rf;
}

std::unique_ptr<RunCheckpointer> start_run_files(RunFiles& rf, const ModelSetup& ms, ZoModel& model,
                                                 MezoEngine& engine, TrainOptions* to,
                                                 const std::vector<Example>& train_set, Collectives& comm) {
  if (!rf.active) return nullptr;
  const bool root = comm.rank() == 0;
  TrajectoryHeader h;
  h.mezo = engine.options();
  h.storage = ms.storage;
  h.cfg = ms.cfg;
  h.base = rf.base;
  h.run = run_settings(ms, *to, train_set, comm);
  if (!rf.plan.found && root) h.base_checksum = model_checksum(model);
  const int64_t start = restore_run(rf.plan, h, model, engine, ms.compute);
  if (comm.world() > 1) {
    std::vector<uint64_t> all(static_cast<size_t>(comm.world()));
    const uint64_t mine = static_cast<uint64_t>(start);
    comm.allgather_u64(&mine, 1, all.data());
    for (int r = 1; r < comm.world(); ++r)
      ZO2_REQUIRE(all[r] == all[0], "rank ", r, " resumes ", rf.plan.log_path, " at step ", all[r], ", rank 0 at ",
                  all[0], " (the run directory must be the same file system on every rank)");
  }
  to->start_step = start;
  to->append_metrics = rf.plan.found;
  if (root && rf.plan.found) {
    std::cerr << "zo2: resuming " << rf.opt.out << " at step " << start << " from "
              << (rf.plan.checkpoint.empty() ? "the base weights" : rf.plan.checkpoint) << " and "
              << start - (rf.plan.checkpoint.empty() ? rf.plan.log.header.first_step : rf.plan.state.step)
              << " replayed log records\n";
  }
  return std::make_unique<RunCheckpointer>(rf.opt, h, rf.plan, engine, model, ms.storage, to->steps, root);
}

}  // namespace zo2::cli
