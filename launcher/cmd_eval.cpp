#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/collectives.h"
#include "common/error.h"
#include "launcher/commands.h"
#include "launcher/task_setup.h"
#include "train/task_eval.h"

namespace zo2::cli {

namespace {

void add_eval_options(po::options_description& d) {
  d.add_options()
      ("data", po::value<std::string>(), "examples: a task's JSON lines (with --task; MeZO evaluates the validation split) or custom JSON lines (docs/data.md)")
      ("eval-data", po::value<std::string>(), "the same as --data")
      ("num-eval", po::value<int64_t>()->default_value(0), "with --task: evaluate this many records drawn by --seed as MeZO does (0: all, in file order)")
      ("seed", po::value<int64_t>()->default_value(0), "with --task: the sampling seed (MeZO's train_set_seed)")
      ("max-length", po::value<int64_t>()->default_value(2048), "longest sequence; longer ones are cut after BOS")
      ("batch-size", po::value<int64_t>()->default_value(16), "examples per forward / prompts per generation batch")
      ("out", po::value<std::string>(), "write the results as JSON to this file")
      ("predictions", po::value<std::string>(), "with --task: write each example's prediction as JSON lines");
}

}  // namespace

int cmd_eval(const Args& args) {
  po::options_description desc("zo2 eval: accuracy (candidate scoring) or F1 (greedy generation) of a model on a task");
  add_model_options(desc);
  add_offload_options(desc);
  add_task_options(desc);
  add_eval_options(desc);
  po::variables_map vm;
  if (!parse_options("eval", args, desc, vm)) return 0;
  ZO2_REQUIRE(vm.count("data") + vm.count("eval-data") == 1, "zo2 eval: give the examples with --data FILE");
  const std::string data = vm.count("data") ? vm["data"].as<std::string>() : vm["eval-data"].as<std::string>();
  const int64_t batch_size = int_option(vm, "batch-size", 1), num = int_option(vm, "num-eval", 0);

  SingleProcess comm;
  ModelSetup ms;
  std::unique_ptr<ZoModel> model = build_model(vm, &ms);
  const int64_t max_length = std::min(vm["max-length"].as<int64_t>(), ms.cfg.max_positions);
  TaskSetup ts = make_task_setup(vm, ms, max_length, batch_size);

  nlohmann::json res = {{"data", data}, {"model", ms.source.empty() ? vm["preset"].as<std::string>() : ms.source}};
  EvalMetrics m;
  if (ts.task) {
    const uint32_t seed = sampling_seed(vm, "seed");
    const std::vector<TaskExample> xs = load_task_file(*ts.task, data, num > 0 ? num : -1, seed, ts.encode, ts.encoding);
    std::vector<std::string> outputs;
    m = evaluate_task(*model, *ts.task, xs, ts.eval, comm, &outputs);
    res["task"] = ts.task->name;
    res["seed"] = seed;
    if (vm.count("predictions")) {
      const std::string path = vm["predictions"].as<std::string>();
      std::ofstream out(path);
      ZO2_REQUIRE(out.good(), path, ": cannot write");
      for (size_t i = 0; i < xs.size(); ++i) {
        nlohmann::json p = {{"line", xs[i].line}, {"prediction", outputs[i]}};
        if (ts.task->generation) p["answers"] = xs[i].answers;
        else p["correct"] = xs[i].correct;
        out << p.dump() << "\n";
      }
    }
  } else {
    ZO2_REQUIRE(num == 0, "option --num-eval needs --task (custom data is evaluated whole)");
    const std::vector<Example> xs = load_jsonl(data, jsonl_options(ts, ms));
    m = evaluate(*model, xs, ts.eval.batch, ts.eval.batch_size, ms.compute, comm);
  }
  res["examples"] = m.examples;
  res["loss"] = m.loss;
  if (m.accuracy >= 0) res["accuracy"] = m.accuracy;
  if (m.f1 >= 0) res["f1"] = m.f1;

  std::cout << (ts.task ? ts.task->name : data) << ": " << m.examples << " examples, loss " << m.loss;
  if (m.accuracy >= 0) std::cout << ", accuracy " << m.accuracy;
  if (m.f1 >= 0) std::cout << ", F1 " << m.f1;
  std::cout << "\n";
  if (vm.count("out")) {
    const std::string path = vm["out"].as<std::string>();
    std::ofstream out(path);
    ZO2_REQUIRE(out.good(), path, ": cannot write");
    out << res.dump(2) << "\n";
  }
  return 0;
}

}  // namespace zo2::cli
