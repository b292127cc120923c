#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "comm/dist.h"
#include "common/collectives.h"
#include "common/error.h"
#include "data/jsonl_dataset.h"
#include "launcher/commands.h"
#include "launcher/run_setup.h"
#include "launcher/task_setup.h"
#include "launcher/train_checkpoint.h"
#include "train/trainer.h"
#include "zo/zo_model.h"

namespace zo2::cli {

namespace {

void add_train_options(po::options_description& d) {
  d.add_options()
      ("data", po::value<std::string>(), "training set as custom JSON lines (docs/data.md); or --task")
      ("eval-data", po::value<std::string>(), "evaluation set for --data (JSON lines)")
      ("steps", po::value<int64_t>()->default_value(1000), "training steps")
      ("batch-size", po::value<int64_t>()->default_value(16), "examples per rank per micro-batch")
      ("micro-batches", po::value<int64_t>()->default_value(1), "micro-batches per step (gradient accumulation)")
      ("max-length", po::value<int64_t>()->default_value(2048), "longest sequence; longer ones are cut after BOS")
      ("lr", po::value<double>()->default_value(1e-6), "learning rate")
      ("schedule", po::value<std::string>()->default_value("constant"), "constant, linear or cosine")
      ("warmup", po::value<int64_t>()->default_value(0), "linear warmup steps")
      ("eps", po::value<float>()->default_value(1e-3f), "perturbation scale epsilon")
      ("q", po::value<int64_t>()->default_value(1), "random directions per step")
      ("weight-decay", po::value<float>()->default_value(0.f), "weight decay (not on biases and LayerNorm)")
      ("seed", po::value<uint64_t>()->default_value(42), "run seed: directions and data order")
      ("stochastic-rounding", po::value<bool>()->default_value(true), "round 16-bit weight updates stochastically")
      ("eval-every", po::value<int64_t>()->default_value(0), "evaluate every N steps (0: at the end only)")
      ("eval-batch-size", po::value<int64_t>()->default_value(16), "examples per evaluation batch")
      ("metrics", po::value<std::string>()->default_value(""), "write metrics as JSON lines to this file")
      ("progress", po::value<bool>()->default_value(true), "show progress")
      ("backend", po::value<std::string>()->default_value("auto"), "auto, single, mpi or nccl (multi-rank runs: zo2run)")
      ("perturbation-parallel", po::value<int64_t>()->default_value(1),
       "P groups of ranks perturb along different directions (P = ranks: pure perturbation parallel; 1: pure data parallel)")
      ("checksum-every", po::value<int64_t>()->default_value(100), "compare weight checksums across ranks every N steps")
      ("eval-at-start", po::value<bool>()->default_value(false), "evaluate before training too (zero-shot)")
      ("dry-run", po::bool_switch(), "print the resolved settings (run file and command line) and stop");
}

// MeZO's tasks (docs/tasks.md): sampling as MeZO's run.py, dev evaluation, the final test evaluation.
void add_task_train_options(po::options_description& d) {
  d.add_options()
      ("train-file", po::value<std::string>(), "with --task: the train split as JSON lines (scripts/export_task.py)")
      ("eval-file", po::value<std::string>(), "with --task: the validation split, MeZO's test set")
      ("num-train", po::value<int64_t>()->default_value(1000), "training examples drawn from --train-file")
      ("num-dev", po::value<int64_t>(), "dev examples drawn after them (default: mezo.sh's, 500; CB and Copa 100)")
      ("num-eval", po::value<int64_t>()->default_value(1000), "test examples drawn from --eval-file (0: all)")
      ("train-set-seed", po::value<int64_t>()->default_value(0), "seed of the train/dev/test draws (MeZO's train_set_seed)")
      ("train-as-classification", po::value<bool>(), "loss over all candidates (default: mezo.sh's; false for Copa, ReCoRD, SQuAD, DROP)")
      ("select-best", po::value<std::string>()->default_value("loss"), "best dev evaluation by 'loss' (MeZO) or 'metric' (accuracy/F1)")
      ("results", po::value<std::string>(), "with --task: write test and dev metrics as JSON to this file");
}

nlohmann::json metrics_json(const EvalMetrics& m, const std::string& prefix) {
  nlohmann::json j = {{prefix + "loss", m.loss}, {prefix + "examples", m.examples}};
  if (m.accuracy >= 0) j[prefix + "accuracy"] = m.accuracy;
  if (m.f1 >= 0) j[prefix + "f1"] = m.f1;
  return j;
}

// Rank 0's --seed (directions, data order) and --init-seed (random weights) are the run's: a rank
// started with other values says so and adopts them, so that every replica stays identical.
void agree_on_seeds(po::variables_map& vm, Collectives& comm) {
  const char* names[2] = {"seed", "init-seed"};
  uint64_t v[2], mine[2];
  for (int i = 0; i < 2; ++i) v[i] = mine[i] = vm[names[i]].as<uint64_t>();
  comm.broadcast_u64(v, 2, 0);
  for (int i = 0; i < 2; ++i) {
    if (v[i] == mine[i]) continue;
    std::cerr << "zo2: warning: rank " << comm.rank() << " was given --" << names[i] << " " << mine[i]
              << "; using rank 0's " << v[i] << "\n";
    vm.at(names[i]).value() = v[i];
  }
}

// The run's training and MeZO options from the command line, checked before a model loads; the
// model's parts (padding id, sequence length, lookahead) are filled in once it has.
TrainOptions train_options(const po::variables_map& vm) {
  TrainOptions to;
  to.steps = vm["steps"].as<int64_t>();
  to.batch_size = vm["batch-size"].as<int64_t>();
  to.micro_batches = vm["micro-batches"].as<int64_t>();
  to.lr.kind = parse_lr_kind(vm["schedule"].as<std::string>());
  to.lr.base = vm["lr"].as<double>();
  to.lr.warmup = vm["warmup"].as<int64_t>();
  to.lr.total = to.steps;
  to.data_seed = vm["seed"].as<uint64_t>();
  to.eval_every = vm["eval-every"].as<int64_t>();
  to.eval_batch_size = vm["eval-batch-size"].as<int64_t>();
  to.metrics_path = vm["metrics"].as<std::string>();
  to.progress = vm["progress"].as<bool>();
  to.eval_at_start = vm["eval-at-start"].as<bool>();
  to.checksum_every = vm["checksum-every"].as<int64_t>();
  check_train_options(to);
  return to;
}

MezoOptions mezo_options(const po::variables_map& vm) {
  MezoOptions mo;
  mo.seed = vm["seed"].as<uint64_t>();
  mo.q = vm["q"].as<int64_t>();
  mo.eps = vm["eps"].as<float>();
  mo.weight_decay = vm["weight-decay"].as<float>();
  mo.stochastic_round = vm["stochastic-rounding"].as<bool>();
  mo.perturbation_groups = vm["perturbation-parallel"].as<int64_t>();
  check_mezo_options(mo);
  return mo;
}

}  // namespace

int cmd_train(const Args& args) {
  po::options_description desc("zo2 train");
  add_model_options(desc);
  add_offload_options(desc);
  add_train_options(desc);
  add_task_options(desc);
  add_task_train_options(desc);
  add_checkpoint_options(desc);
  po::variables_map vm;
  if (!parse_options("train", args, desc, vm)) return 0;
  if (vm["dry-run"].as<bool>()) {
    std::cout << describe(vm);
    return 0;
  }
  const bool task_run = vm.count("task") > 0;
  ZO2_REQUIRE(task_run != (vm.count("data") > 0), "zo2 train: give --data FILE (custom JSON lines) or --task NAME");
  ZO2_REQUIRE(!task_run || (vm.count("train-file") && !vm.count("eval-data")),
              "zo2 train: --task reads --train-file (and --eval-file), not --data/--eval-data");
  const std::string select = vm["select-best"].as<std::string>();
  ZO2_REQUIRE(select == "loss" || select == "metric", "option --select-best: invalid value '", select,
              "' (loss or metric)");

  DistOptions dopt;
  dopt.backend = parse_backend(vm["backend"].as<std::string>(), "--backend");
  std::unique_ptr<ProcessGroup> group = init_process_group(dopt);
  Collectives& comm = *group;
  agree_on_seeds(vm, comm);
  TrainOptions to = train_options(vm);
  MezoOptions mo = mezo_options(vm);
  ModelSetup ms;
  use_process_group(*group, &ms);
  RunFiles files = prepare_run_files(vm, comm.rank());  // checkpoints and resume: --model becomes the checkpoint
  std::unique_ptr<ZoModel> model = build_model(vm, &ms);
  const OptConfig& cfg = ms.cfg;
  const int64_t max_length = std::min(vm["max-length"].as<int64_t>(), cfg.max_positions);
  TaskSetup ts = make_task_setup(vm, ms, max_length, vm["eval-batch-size"].as<int64_t>());
  std::vector<Example> train_set, eval_set;
  TaskSplits splits;
  std::vector<TaskExample> test;
  if (task_run) {
    const Task& task = *ts.task;
    if (vm.count("train-as-classification")) ts.eval.train_as_classification = vm["train-as-classification"].as<bool>();
    const uint32_t seed = sampling_seed(vm, "train-set-seed");
    const int64_t num_dev = vm.count("num-dev") ? vm["num-dev"].as<int64_t>() : task.num_dev;
    splits = load_train_dev(task, vm["train-file"].as<std::string>(), vm["num-train"].as<int64_t>(), num_dev, seed,
                            ts.encode, ts.encoding);
    ZO2_REQUIRE(!splits.train.empty(), "zo2 train: no training examples left after the dev set");
    train_set = train_forms(splits.train, ts.eval.train_as_classification);
    if (vm.count("eval-file")) {
      const int64_t n = vm["num-eval"].as<int64_t>();
      test = load_task_file(task, vm["eval-file"].as<std::string>(), n > 0 ? n : -1, seed, ts.encode, ts.encoding);
    }
  } else {
    const JsonlOptions jo = jsonl_options(ts, ms);
    train_set = load_jsonl(vm["data"].as<std::string>(), jo);
    if (vm.count("eval-data")) eval_set = load_jsonl(vm["eval-data"].as<std::string>(), jo);
  }

  to.batch.pad_id = cfg.pad_token_id;
  to.batch.max_len = max_length;
  mo.lookahead = ms.lookahead;

  if (comm.rank() == 0) {
    std::cerr << "zo2 train\n" << describe(vm);
    if (ms.streamed) std::cerr << format_plan(PlanInput{cfg, ms.storage, ms.compute}, ms.plan);
    std::cerr << comm.world() << " rank(s), " << group->local_world() << " on this node, backend "
              << backend_name(group->backend()) << "; perturbation groups " << mo.perturbation_groups
              << ", data shards " << comm.world() / std::max<int64_t>(1, mo.perturbation_groups)
              << (ms.shared ? "; streamed blocks in one shared host copy per node" : "") << "\n";
  }
  to.best_by_metric = select == "metric";
  if (task_run && !splits.dev.empty())
    to.dev_eval = [&] { return evaluate_task(*model, *ts.task, splits.dev, ts.eval, comm); };

  auto engine = std::make_unique<MezoEngine>(*model, comm, mo, ms.compute);
  std::unique_ptr<RunCheckpointer> ckpt = start_run_files(files, ms, *model, *engine, &to, train_set, comm);
  const bool keep_best = ckpt && !files.opt.out.empty() && to.dev_eval;
  if (keep_best) to.on_best_dev = [&](int64_t step, const EvalMetrics&) { ckpt->save_best(step); };
  TrainSummary s = train(*engine, *model, train_set, eval_set, to, comm, ms.compute, ckpt ? ckpt->hook() : StepHook{});
  if (ckpt) ckpt->finish();
  nlohmann::json res;
  if (task_run && !test.empty()) {
    // As MeZO: the test set is scored on the best dev checkpoint (kept in <out>/best-dev when the run has
    // a directory), else on the last weights.
    res["weights"] = "last";
    if (keep_best && s.best_step >= 0 && s.best_step != to.steps) {
      const std::string best = best_dev_dir(files.opt.out);
      comm.barrier();  // rank 0 wrote it
      ckpt.reset();
      engine.reset();
      model.reset();  // one model in memory at a time
      vm.erase("preset");
      vm.erase("model");
      vm.insert({"model", po::variable_value(best, false)});
      model = build_model(vm, &ms);
      res["weights"] = "best dev (step " + std::to_string(s.best_step) + ", " + best + ")";
    }
    const EvalMetrics t = evaluate_task(*model, *ts.task, test, ts.eval, comm);
    res.update(metrics_json(t, ""));
    res["task"] = ts.task->name;
  }
  if (!keep_best && s.best_step >= 0 && s.best_step < to.steps && !files.opt.log_path().empty())
    res["best_dev_weights"] = "zo2 replay " + (files.base.rfind("preset:", 0) == 0 ? "" : "--base " + files.base + " ") +
                              "--trajectory " + files.opt.log_path() + " --steps " +
                              std::to_string(s.best_step) + " --out DIR";
  if (s.best_step >= 0) {
    res.update(metrics_json(s.final_eval, "dev_"));
    res["best_dev_step"] = s.best_step;
  }
  if (comm.rank() == 0) {
    std::cout << "trained " << s.steps << " steps in " << s.seconds << " s: loss " << s.first_loss << " -> "
              << s.last_loss << ", " << s.skipped << " skipped";
    if (s.final_eval.examples > 0) {
      std::cout << "; " << (task_run ? "dev" : "eval") << " loss " << s.final_eval.loss;
      if (s.final_eval.accuracy >= 0) std::cout << ", accuracy " << s.final_eval.accuracy;
      if (s.final_eval.f1 >= 0) std::cout << ", F1 " << s.final_eval.f1;
      std::cout << " (best at step " << s.best_step << ")";
    }
    if (res.contains("examples")) {
      std::cout << "; test " << ts.task->metric() << " " << res[ts.task->metric()].get<double>() << " on "
                << res["examples"].get<int64_t>() << " examples (" << res["weights"].get<std::string>() << " weights)";
    }
    std::cout << "\n";
    if (res.contains("best_dev_weights"))
      std::cout << "best dev weights: " << res["best_dev_weights"].get<std::string>() << "\n";
    if (to.eval_at_start && s.initial_eval.examples > 0 && s.initial_eval.metric() >= 0 && s.final_eval.metric() >= 0) {
      const char* name = s.final_eval.accuracy >= 0 ? "accuracy" : "F1";
      std::printf("%s before training %.1f%%, after %d steps %.1f%% (%+.1f points)\n", name,
                  100 * s.initial_eval.metric(), static_cast<int>(s.steps), 100 * s.final_eval.metric(),
                  100 * (s.final_eval.metric() - s.initial_eval.metric()));
    }
    if (vm.count("results")) {
      const std::string path = vm["results"].as<std::string>();
      std::ofstream out(path);
      ZO2_REQUIRE(out.good(), path, ": cannot write");
      out << res.dump(2) << "\n";
    }
  }
  return 0;
}

}  // namespace zo2::cli
