// Task evaluation, `zo2 eval` and `zo2 train --task` on a toy model whose answers are known without
// running it: a bigram model (one identity block) that always continues token u with next(u), with
// log-probability ~0 for next(u) and below -30 for anything else. Over a character vocabulary, its
// chain " great\n" makes it call every SST-2 sentence great and answer every question "great".
// Expected metrics are therefore counts over the hand-written records; tolerance 1e-9.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/test_util.h"
#include "io/checkpoint_save.h"
#include "launcher/commands.h"
#include "train/task_eval.h"
#include "zo/init.h"

namespace zo2 {
namespace {

using nlohmann::json;

// Characters of the toy vocabulary after OPT's four specials; ' ' and '\n' are GPT-2's byte symbols.
const std::string kChars = "abcdefghijklmnopqrstuvwxyzACIQTW:?.,\" \n";
std::string symbol(char c) { return c == ' ' ? "\xC4\xA0" : c == '\n' ? "\xC4\x8A" : std::string(1, c); }
int64_t id_of(char c) { return 4 + static_cast<int64_t>(kChars.find(c)); }

OptConfig toy_config() {
  OptConfig c;
  c.name = "toy";
  c.vocab_size = 4 + static_cast<int64_t>(kChars.size()) + 1;  // even: one unused id
  c.hidden = c.word_embed_dim = c.vocab_size;
  c.layers = 1;
  c.heads = 2;
  c.ffn = 8;
  c.max_positions = 128;
  c.tie_word_embeddings = false;
  return c;
}

// The bigram model: token u -> next(u) (u itself where next has no entry).
OptWeights toy_weights(const OptConfig& c, const std::map<int64_t, int64_t>& next) {
  OptWeights w = random_weights(c, at::kFloat, at::kCPU, 1);
  for_each_param(c, w, [](const ParamInfo&, at::Tensor& t) { t.zero_(); });  // blocks: identity
  w.blocks[0].slot(8).fill_(1);   // LayerNorm weights
  w.blocks[0].slot(14).fill_(1);
  w.outer.final_ln_w.fill_(1);
  const int64_t V = c.vocab_size;
  for (int64_t u = 0; u < V; ++u) {
    w.outer.embed_tokens[u][u] = 10.0;
    auto it = next.find(u);
    w.outer.lm_head[it == next.end() ? u : it->second][u] = 5.0;
  }
  return w;
}

std::map<int64_t, int64_t> great_chain() {
  std::map<int64_t, int64_t> next;
  const std::string chain = "s great\n";  // "...was" -> " great" -> "\n"; "Answer:" -> " great"
  for (size_t i = 0; i + 1 < chain.size(); ++i) next[id_of(chain[i])] = id_of(chain[i + 1]);
  next[id_of(':')] = id_of(' ');
  return next;
}

// A model directory that is also its tokenizer directory.
std::string toy_model_dir() {
  static const std::string dir = [] {
    const std::string d = test::temp_dir("toy_model");
    const OptConfig c = toy_config();
    save_checkpoint(d, c, toy_weights(c, great_chain()), at::kFloat);
    json vocab = {{"<s>", 0}, {"<pad>", 1}, {"</s>", 2}, {"<unk>", 3}};
    for (char ch : kChars) vocab[symbol(ch)] = id_of(ch);
    std::ofstream(d + "/vocab.json") << vocab.dump();
    std::ofstream(d + "/merges.txt") << "#version: 0.2\n";
    return d;
  }();
  return dir;
}

void write_lines(const std::string& path, const std::vector<json>& records) {
  std::ofstream out(path);
  for (const json& r : records) out << r.dump() << "\n";
}

// SST-2 records: the toy model says "great" (label 1), so the labels give the accuracy.
std::vector<json> sst2_records(const std::vector<int>& labels) {
  std::vector<json> out;
  for (size_t i = 0; i < labels.size(); ++i)
    out.push_back({{"sentence", std::string("a fine film ") + static_cast<char>('a' + i)}, {"label", labels[i]}});
  return out;
}

std::string run_cli(int (*cmd)(const cli::Args&), const std::vector<std::string>& args) {
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  try {
    cmd(args);
  } catch (...) {
    testing::internal::GetCapturedStdout();
    testing::internal::GetCapturedStderr();
    throw;
  }
  testing::internal::GetCapturedStderr();
  return testing::internal::GetCapturedStdout();
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

TEST(TaskEval, CandidateScoringCountsAnyCorrectCandidate) {
  const OptConfig c = toy_config();
  ResidentModel model(c, toy_weights(c, great_chain()));
  SingleProcess comm;
  // Prompt ends in 's': the candidate " g r" follows the chain, " q z" does not.
  const std::vector<int64_t> prompt = {0, id_of('w'), id_of('a'), id_of('s')};
  auto seq = [&](const std::string& option) {
    Sequence s{prompt, static_cast<int64_t>(prompt.size())};
    for (char ch : option) s.ids.push_back(id_of(ch));
    return s;
  };
  std::vector<TaskExample> xs(4);
  const std::vector<std::vector<int64_t>> correct = {{0}, {1}, {1, 0}, {2, 1}};  // the chain is candidate 0
  for (size_t i = 0; i < xs.size(); ++i) {
    xs[i].candidates.candidates = {seq(" gr"), seq(" qz"), seq("zz")};
    xs[i].correct = correct[i];
    xs[i].candidates.gold = correct[i][0];
    xs[i].gold_option.candidates = {xs[i].candidates.candidates[correct[i][0]]};
  }
  TaskEvalOptions opt;
  opt.batch_size = 3;
  opt.batch.pad_multiple = 1;
  std::vector<std::string> out;
  const EvalMetrics m = evaluate_task(model, find_task("copa"), xs, opt, comm, &out);
  EXPECT_NEAR(m.accuracy, 0.5, 1e-9);  // examples 0 and 2 list candidate 0
  EXPECT_EQ(m.f1, -1);
  EXPECT_EQ(out, (std::vector<std::string>{"0", "0", "0", "0"}));
  // The loss is the training form's: classification CE here, ~0 where the chain is gold, > 20 elsewhere.
  const EvalMetrics lm = evaluate_task(model, find_task("copa"), {xs[0]}, opt, comm);
  EXPECT_LT(lm.loss, 1e-6);
}

TEST(TaskEval, EvalCommandScoresSst2AndSquad) {
  const std::string dir = test::temp_dir("eval_cli");
  write_lines(dir + "/sst2.jsonl", sst2_records({1, 0, 1, 1}));
  const std::string out = run_cli(cli::cmd_eval, {"--model", toy_model_dir(), "--task", "sst2", "--data",
                                                  dir + "/sst2.jsonl", "--device", "cpu", "--out", dir + "/r.json"});
  EXPECT_NE(out.find("accuracy 0.75"), std::string::npos) << out;
  const json r = read_json(dir + "/r.json");
  EXPECT_NEAR(r["accuracy"].get<double>(), 0.75, 1e-9);
  EXPECT_EQ(r["examples"].get<int64_t>(), 4);
  EXPECT_EQ(r["task"], "SST2");
  // --num-eval draws records by the seed (MeZO's sample_subset): 2 of the 4.
  run_cli(cli::cmd_eval, {"--model", toy_model_dir(), "--task", "SST2", "--data", dir + "/sst2.jsonl", "--device",
                          "cpu", "--num-eval", "2", "--seed", "3", "--out", dir + "/r2.json"});
  EXPECT_EQ(read_json(dir + "/r2.json")["examples"].get<int64_t>(), 2);
  test::expect_error([&] { run_cli(cli::cmd_eval, {"--model", toy_model_dir(), "--task", "SST2", "--data",
                                                  dir + "/sst2.jsonl", "--device", "cpu", "--seed=4294967296"}); },
                     {"option --seed: 4294967296 is not a numpy seed"});

  // SQuAD: the model answers "great" to every question.
  std::vector<json> squad;
  for (const char* a : {"great", "a great", "bad", "great"})
    squad.push_back({{"title", "T"}, {"context", "it is fine"}, {"question", "what?"}, {"answers", {{"text", {a}}}}});
  squad[3]["answers"]["text"] = {"bad", "great", "x"};
  write_lines(dir + "/squad.jsonl", squad);
  run_cli(cli::cmd_eval, {"--model", toy_model_dir(), "--task", "squad", "--data", dir + "/squad.jsonl", "--device",
                          "cpu", "--batch-size", "3", "--out", dir + "/s.json", "--predictions", dir + "/p.jsonl"});
  const json s = read_json(dir + "/s.json");
  EXPECT_NEAR(s["f1"].get<double>(), 3.0 / 4.0, 1e-9);  // 1 + 1 ("a" is an article) + 0 + 1
  std::ifstream preds(dir + "/p.jsonl");
  std::string line;
  int n = 0;
  while (std::getline(preds, line)) {
    EXPECT_EQ(json::parse(line)["prediction"], "great");
    ++n;
  }
  EXPECT_EQ(n, 4);

  // Custom JSON lines with token ids: accuracy of candidate scoring.
  const int64_t s_id = id_of('s'), sp = id_of(' '), q = id_of('q');
  write_lines(dir + "/custom.jsonl", {{{"prompt_ids", {s_id}}, {"candidate_ids", {{sp}, {q}}}, {"label", 0}},
                                      {{"prompt_ids", {s_id}}, {"candidate_ids", {{q}, {sp}}}, {"label", 0}}});
  const std::string c = run_cli(cli::cmd_eval, {"--model", toy_model_dir(), "--data", dir + "/custom.jsonl",
                                                "--device", "cpu"});
  EXPECT_NE(c.find("accuracy 0.5"), std::string::npos) << c;

  EXPECT_THROW(run_cli(cli::cmd_eval, {"--model", toy_model_dir(), "--task", "sst2", "--device", "cpu"}), Error);
  test::expect_error([&] { run_cli(cli::cmd_eval, {"--model", toy_model_dir(), "--task", "nope", "--data",
                                                  dir + "/sst2.jsonl", "--device", "cpu"}); },
                     {"unknown task 'nope'"});
}

// zo2 train on SST-2 records in `dir`: 4 train, 3 dev, 4 test examples, 2 steps at lr 0 (the weights
// stay the toy model's, so every metric is known), dev evaluation every step, results in dir/res.json.
std::string train_sst2_lr0(const std::string& dir, const std::vector<std::string>& extra) {
  write_lines(dir + "/train.jsonl", sst2_records({1, 1, 0, 1, 0, 1, 1, 1}));
  write_lines(dir + "/valid.jsonl", sst2_records({1, 0, 1, 1}));
  std::vector<std::string> args = {"--model", toy_model_dir(), "--task", "SST2", "--train-file", dir + "/train.jsonl",
                                   "--eval-file", dir + "/valid.jsonl", "--num-train", "4", "--num-dev", "3",
                                   "--num-eval", "0", "--steps", "2", "--batch-size", "2", "--lr", "0", "--eval-every",
                                   "1", "--device", "cpu", "--progress", "false", "--results", dir + "/res.json"};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_cli(cli::cmd_train, args);
}

TEST(TaskEval, TrainCommandSamplesEvaluatesDevAndWritesResults) {
  const std::string dir = test::temp_dir("train_task");
  train_sst2_lr0(dir, {"--metrics", dir + "/m.jsonl"});
  const json r = read_json(dir + "/res.json");
  EXPECT_NEAR(r["accuracy"].get<double>(), 0.75, 1e-9);
  EXPECT_EQ(r["examples"].get<int64_t>(), 4);
  EXPECT_EQ(r["best_dev_step"].get<int64_t>(), 1);  // equal losses later: the first stays best
  // dev = the last 3 of the first 7 of numpy's permutation of the 8 training records
  const std::vector<int64_t> perm = numpy_permutation(8, 0);
  const std::vector<int> labels = {1, 1, 0, 1, 0, 1, 1, 1};
  double dev_hits = 0;
  for (int i = 4; i < 7; ++i) dev_hits += labels[perm[i]];
  EXPECT_NEAR(r["dev_accuracy"].get<double>(), dev_hits / 3, 1e-9);
  std::ifstream m(dir + "/m.jsonl");
  std::string line;
  int evals = 0;
  while (std::getline(m, line)) evals += json::parse(line).contains("eval_accuracy");
  EXPECT_EQ(evals, 2);  // after step 1 and at the end
}

// With a run directory the best dev evaluation's weights are kept in <out>/best-dev and the test set is
// scored on them. lr 0 and a zero-shot evaluation: every evaluation ties, so the first (step 0) stays
// best, and the weights (hence the test accuracy) stay the toy model's.
TEST(TaskEval, TrainKeepsTheBestDevCheckpointAndScoresTheTestSetOnIt) {
  const std::string dir = test::temp_dir("train_best");
  train_sst2_lr0(dir, {"--eval-at-start", "true", "--out", dir + "/run"});
  const json r = read_json(dir + "/res.json");
  EXPECT_EQ(r["best_dev_step"].get<int64_t>(), 0);
  EXPECT_NE(r["weights"].get<std::string>().find("best dev (step 0"), std::string::npos) << r.dump();
  EXPECT_NEAR(r["accuracy"].get<double>(), 0.75, 1e-9);
  EXPECT_EQ(read_json(dir + "/run/best-dev/zo2_state.json")["step"].get<int64_t>(), 0);
  EXPECT_TRUE(std::filesystem::exists(dir + "/run/checkpoint-2/model.safetensors"));
}

TEST(TaskEval, RunFilesParse) {
  namespace fs = std::filesystem;
  const fs::path runs = fs::path(ZO2_SOURCE_DIR) / "configs" / "runs";
  int n = 0;
  for (const auto& e : fs::directory_iterator(runs)) {
    if (e.path().extension() != ".ini") continue;
    SCOPED_TRACE(e.path().string());
    ++n;
    // --dry-run reads the file with zo2 train's options (an unknown one throws) and stops.
    const std::string out = run_cli(cli::cmd_train, {"--config", e.path().string(), "--dry-run"});
    // Task runs name their task; the demo's data files come from zo2 demo itself.
    if (e.path().stem() != "demo") EXPECT_NE(out.find("task = "), std::string::npos) << out;
    EXPECT_NE(out.find("lr = "), std::string::npos) << out;
  }
  EXPECT_GE(n, 4);
  const std::string bad = test::temp_dir("runs") + "/bad.ini";
  std::ofstream(bad) << "task = SST2\nlearning-rate = 1e-7\n";
  EXPECT_THROW(run_cli(cli::cmd_train, {"--config", bad, "--dry-run"}), Error);
}

}  // namespace
}  // namespace zo2
