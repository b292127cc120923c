#include <filesystem>
#include <iostream>

#include "comm/dist.h"
#include "common/collectives.h"
#include "common/error.h"
#include "data/jsonl_dataset.h"
#include "launcher/commands.h"
#include "launcher/run_setup.h"
#include "launcher/train_checkpoint.h"
#include "text/tokenizer.h"
#include "train/trainer.h"
#include "zo/zo_model.h"

namespace zo2::cli {

namespace {

void add_train_options(po::options_description& d) {
  d.add_options()
      ("data", po::value<std::string>()->required(), "training set (JSON lines, see docs/data.md)")
      ("eval-data", po::value<std::string>(), "evaluation set (JSON lines)")
      ("tokenizer", po::value<std::string>(), "tokenizer directory for text data (default: the model directory)")
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
      ("checksum-every", po::value<int64_t>()->default_value(100), "compare weight checksums across ranks every N steps");
}

}  // namespace

int cmd_train(const Args& args) {
  po::options_description desc("zo2 train");
  add_model_options(desc);
  add_offload_options(desc);
  add_train_options(desc);
  add_checkpoint_options(desc);
  po::variables_map vm;
  if (!parse_options("train", args, desc, vm)) return 0;

  DistOptions dopt;
  dopt.backend = parse_backend(vm["backend"].as<std::string>(), "--backend");
  std::unique_ptr<ProcessGroup> group = init_process_group(dopt);
  Collectives& comm = *group;
  ModelSetup ms;
  ms.cuda_index = group->device();
  RunFiles files = prepare_run_files(vm);  // checkpoints and resume: --model becomes the checkpoint
  std::unique_ptr<ZoModel> model = build_model(vm, &ms);
  const OptConfig& cfg = ms.cfg;
  JsonlOptions jo;
  jo.bos_id = cfg.bos_token_id;
  jo.vocab_size = cfg.vocab_size;
  std::shared_ptr<Tokenizer> tok;
  const std::string tok_dir = vm.count("tokenizer") ? vm["tokenizer"].as<std::string>() : ms.source;
  if (!tok_dir.empty() && std::filesystem::exists(tok_dir + "/vocab.json")) {
    tok = std::make_shared<Tokenizer>(tok_dir, TokenizerOptions{std::nullopt, false});
    jo.encode = [tok](const std::string& text) { return tok->encode(text); };
  }
  std::vector<Example> train_set = load_jsonl(vm["data"].as<std::string>(), jo);
  std::vector<Example> eval_set;
  if (vm.count("eval-data")) eval_set = load_jsonl(vm["eval-data"].as<std::string>(), jo);

  TrainOptions to;
  to.steps = vm["steps"].as<int64_t>();
  to.batch_size = vm["batch-size"].as<int64_t>();
  to.micro_batches = vm["micro-batches"].as<int64_t>();
  to.batch.pad_id = cfg.pad_token_id;
  to.batch.max_len = std::min(vm["max-length"].as<int64_t>(), cfg.max_positions);
  to.lr.kind = parse_lr_kind(vm["schedule"].as<std::string>());
  to.lr.base = vm["lr"].as<double>();
  to.lr.warmup = vm["warmup"].as<int64_t>();
  to.lr.total = to.steps;
  to.data_seed = vm["seed"].as<uint64_t>();
  to.eval_every = vm["eval-every"].as<int64_t>();
  to.eval_batch_size = vm["eval-batch-size"].as<int64_t>();
  to.metrics_path = vm["metrics"].as<std::string>();
  to.progress = vm["progress"].as<bool>();

  MezoOptions mo;
  mo.seed = vm["seed"].as<uint64_t>();
  mo.q = vm["q"].as<int64_t>();
  mo.eps = vm["eps"].as<float>();
  mo.weight_decay = vm["weight-decay"].as<float>();
  mo.stochastic_round = vm["stochastic-rounding"].as<bool>();
  mo.perturbation_groups = vm["perturbation-parallel"].as<int64_t>();
  to.checksum_every = vm["checksum-every"].as<int64_t>();

  if (comm.rank() == 0) {
    std::cerr << "zo2 train\n" << describe(vm);
    if (ms.streamed) std::cerr << format_plan(PlanInput{cfg, ms.storage, ms.compute}, ms.plan);
  }
  MezoEngine engine(*model, comm, mo, ms.compute);
  std::unique_ptr<RunCheckpointer> ckpt = start_run_files(files, ms, *model, engine, &to, train_set, comm);
  TrainSummary s = train(engine, *model, train_set, eval_set, to, comm, ms.compute, ckpt ? ckpt->hook() : StepHook{});
  if (ckpt) ckpt->finish();
  if (comm.rank() == 0) {
    std::cout << "trained " << s.steps << " steps in " << s.seconds << " s: loss " << s.first_loss << " -> "
              << s.last_loss << ", " << s.skipped << " skipped";
    if (s.final_eval.examples > 0) {
      std::cout << "; eval loss " << s.final_eval.loss;
      if (s.final_eval.accuracy >= 0) std::cout << ", accuracy " << s.final_eval.accuracy;
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace zo2::cli
