#include "train/trainer.h"

#include <chrono>
#include <cmath>

#include "common/device.h"
#include "common/error.h"
#include "train/metrics.h"
#include "train/sampler.h"

namespace zo2 {

namespace {

std::string fmt(const char* f, double v) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

}  // namespace

void check_train_options(const TrainOptions& opt) {
  ZO2_REQUIRE(opt.steps >= 0 && opt.start_step >= 0, "steps must be >= 0, got ", opt.steps, " (start ", opt.start_step, ")");
  ZO2_REQUIRE(opt.batch_size >= 1 && opt.micro_batches >= 1, "batch size and micro-batches must be >= 1, got ",
              opt.batch_size, " and ", opt.micro_batches);
  ZO2_REQUIRE(opt.eval_batch_size >= 1, "evaluation batch size must be >= 1, got ", opt.eval_batch_size);
  ZO2_REQUIRE(opt.eval_every >= 0 && opt.checksum_every >= 0, "evaluation and checksum intervals must be >= 0 steps, got ",
              opt.eval_every, " and ", opt.checksum_every);
  ZO2_REQUIRE(std::isfinite(opt.lr.base) && opt.lr.base >= 0, "learning rate must be a finite number >= 0, got ",
              opt.lr.base);
  ZO2_REQUIRE(opt.lr.warmup >= 0, "warmup must be >= 0 steps, got ", opt.lr.warmup);
}

void check_replicas(ZoModel& model, Collectives& comm, int64_t step) {
  const std::vector<uint64_t> mine = model.checksums();
  const int n = static_cast<int>(mine.size());
  std::vector<uint64_t> all(static_cast<size_t>(n) * comm.world());
  comm.allgather_u64(mine.data(), n, all.data());
  for (int r = 1; r < comm.world(); ++r)
    for (int i = 0; i < n; ++i)
      if (all[static_cast<size_t>(r) * n + i] != all[i]) {
        const std::string what = i == 0 ? "the embeddings/final LayerNorm/head" : "block " + std::to_string(i - 1);
        throw_error("replicas diverged after step ", step, ": rank ", r, " differs from rank 0 in ", what);
      }
}

TrainSummary train(MezoEngine& engine, ZoModel& model, const std::vector<Example>& train_set,
                   const std::vector<Example>& eval_set, const TrainOptions& opt, Collectives& comm,
                   at::ScalarType compute_dtype, const StepHook& on_step, const EvalHook& on_eval) {
  check_train_options(opt);
  const bool root = comm.rank() == 0;
  const int64_t groups = engine.options().perturbation_groups;
  const int64_t shards = comm.world() / groups, shard = comm.rank() / groups;
  Sampler sampler(static_cast<int64_t>(train_set.size()), opt.data_seed);
  MetricsLog log(root ? opt.metrics_path : std::string(), opt.append_metrics);
  Progress progress(opt.steps, opt.start_step, root && opt.progress, opt.log_every);
  const at::Device device = model.device();

  TrainSummary sum;
  const bool has_eval = opt.dev_eval || !eval_set.empty();
  auto run_eval = [&](int64_t step) {
    engine.flush();
    EvalMetrics m = opt.dev_eval ? opt.dev_eval()
                                 : evaluate(model, eval_set, opt.batch, opt.eval_batch_size, compute_dtype, comm);
    const EvalMetrics& best = sum.best_eval;
    const bool better = sum.best_step < 0 || (opt.best_by_metric ? m.metric() > best.metric() : m.loss < best.loss);
    nlohmann::json rec = {{"step", step}, {"eval_loss", m.loss}, {"eval_examples", m.examples}, {"best", better}};
    if (m.accuracy >= 0) rec["eval_accuracy"] = m.accuracy;
    if (m.f1 >= 0) rec["eval_f1"] = m.f1;
    log.write(rec);
    if (better) {
      sum.best_eval = m;
      sum.best_step = step;
      if (opt.on_best_dev) opt.on_best_dev(step, m);
    }
    if (on_eval) on_eval(step, m);
    return m;
  };

  if (opt.eval_at_start && has_eval) sum.initial_eval = run_eval(opt.start_step);
  int64_t tokens = 0;
  const auto t0 = std::chrono::steady_clock::now();
  reset_peak_memory(device);
  for (int64_t step = opt.start_step; step < opt.steps; ++step) {
    const auto ts = std::chrono::steady_clock::now();
    std::vector<Batch> micro;
    int64_t step_tokens = 0;
    for (int64_t m = 0; m < opt.micro_batches; ++m) {
      const int64_t pos = stream_position(step, m, shard, shards, opt.micro_batches, opt.batch_size);
      std::vector<const Example*> ex;
      for (int64_t i : sampler.take(pos, opt.batch_size)) ex.push_back(&train_set[i]);
      micro.push_back(make_batch(ex, opt.batch).to(device));
      step_tokens += micro.back().tokens;
    }
    const uint64_t sent_before = comm.bytes_sent();
    StepStats st = engine.step(step, micro, opt.lr.at(step));
    synchronize(device);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
    double global_tokens = static_cast<double>(step_tokens);
    comm.allreduce_sum(&global_tokens, 1);
    const uint64_t step_bytes = comm.bytes_sent() - sent_before;  // the losses and the token count
    tokens += static_cast<int64_t>(global_tokens) / groups;  // each perturbation group sees the same data
    if (step == opt.start_step) sum.first_loss = st.loss;
    sum.last_loss = st.loss;
    const double mem_mb = static_cast<double>(peak_memory_bytes(device)) / (1 << 20);
    double g = 0;
    for (double x : st.grads) g += x / static_cast<double>(st.grads.size());
    log.write({{"step", step},
               {"loss", st.loss},
               {"loss_plus", st.loss_plus},
               {"loss_minus", st.loss_minus},
               {"g", st.grads},
               {"lr", st.lr},
               {"tokens", tokens},
               {"tok_s", global_tokens / groups / dt},
               {"step_ms", dt * 1e3},
               {"peak_mem_mb", mem_mb},
               {"bytes_sent", step_bytes},
               {"skipped", engine.skipped_steps()}});
    progress.update(step, "loss " + fmt("%.4f", st.loss) + " g " + fmt("%.3g", g) + " lr " + fmt("%.2g", st.lr) +
                              " " + fmt("%.0f", global_tokens / groups / dt) + " tok/s mem " +
                              fmt("%.0f", mem_mb) + " MB" + (st.skipped ? " (skipped)" : ""));
    if (on_step) on_step(st);
    if (opt.checksum_every > 0 && comm.world() > 1 && (step + 1) % opt.checksum_every == 0) {
      const uint64_t before = comm.bytes_sent();
      check_replicas(model, comm, step);
      log.write({{"step", step}, {"replicas_identical", true}, {"checksum_bytes", comm.bytes_sent() - before}});
    }
    if (opt.eval_every > 0 && has_eval && (step + 1) % opt.eval_every == 0 && step + 1 < opt.steps) {
      progress.finish();
      run_eval(step + 1);
    }
  }
  progress.finish();
  engine.flush();
  sum.steps = opt.steps - opt.start_step;
  sum.skipped = engine.skipped_steps();
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (has_eval) sum.final_eval = run_eval(opt.steps);
  return sum;
}

}  // namespace zo2
