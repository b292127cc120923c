#include "launcher/task_setup.h"

#include <filesystem>

#include "common/error.h"

namespace zo2::cli {

void add_task_options(po::options_description& desc) {
  desc.add_options()
      ("task", po::value<std::string>(), "MeZO task: SST2, RTE, CB, BoolQ, WSC, WIC, MultiRC, Copa, ReCoRD, SQuAD, DROP (docs/tasks.md)")
      ("tokenizer", po::value<std::string>(), "tokenizer directory (vocab.json, merges.txt); default: the --model directory")
      ("bos-id", po::value<int64_t>(), "BOS id prepended to every sequence (default: 0 for tasks, as MeZO; the model's BOS for --data)")
      ("max-new-tokens", po::value<int64_t>()->default_value(50), "generation tasks: new tokens at most (MeZO: 50)");
}

TaskSetup make_task_setup(const po::variables_map& vm, const ModelSetup& ms, int64_t max_length, int64_t batch_size) {
  TaskSetup ts;
  if (vm.count("task")) ts.task = &find_task(vm["task"].as<std::string>());
  std::string dir;
  if (vm.count("tokenizer")) dir = vm["tokenizer"].as<std::string>();
  else if (!ms.source.empty() && std::filesystem::exists(ms.source + "/vocab.json")) dir = ms.source;
  ZO2_REQUIRE(!dir.empty() || !ts.task, "--task ", ts.task ? ts.task->name : "",
              " needs a tokenizer: --tokenizer DIR (or a --model directory with vocab.json)");
  const int64_t bos = vm.count("bos-id") ? vm["bos-id"].as<int64_t>() : ts.task ? 0 : ms.cfg.bos_token_id;
  ZO2_REQUIRE(bos >= 0 && bos < ms.cfg.vocab_size, "option --bos-id: ", bos, " is not a token id of the model (vocab ",
              ms.cfg.vocab_size, ")");
  if (!dir.empty()) {
    ts.tok = std::make_shared<const Tokenizer>(dir, TokenizerOptions{bos, true});
    ZO2_REQUIRE(ts.tok->vocab_size() <= ms.cfg.vocab_size, "tokenizer ", dir, " has ", ts.tok->vocab_size(),
                " tokens, more than the model's ", ms.cfg.vocab_size);
    std::shared_ptr<const Tokenizer> tok = ts.tok;
    ts.encode = [tok](const std::string& s) { return tok->encode(s); };
    ts.eval.decode = [tok](const std::vector<int64_t>& ids) { return tok->decode(ids, /*skip_special=*/true); };
    // MeZO: eos_token_id = [encode("\n", add_special_tokens=False)[-1], eos]
    ts.eval.generate.stop_ids = {tok->encode("\n").back()};
    if (tok->special().eos >= 0) ts.eval.generate.stop_ids.push_back(tok->special().eos);
  }
  ts.encoding.max_length = max_length;
  ts.encoding.max_new_tokens = int_option(vm, "max-new-tokens", 1);
  ts.eval.batch.pad_id = ms.cfg.pad_token_id;
  ts.eval.batch.max_len = max_length;
  ts.eval.batch_size = batch_size;
  ts.eval.compute_dtype = ms.compute;
  ts.eval.train_as_classification = ts.task ? ts.task->train_as_classification : true;
  ts.eval.generate.max_new_tokens = ts.encoding.max_new_tokens;
  ts.eval.generate.max_length = max_length;
  ts.eval.generate.pad_id = ms.cfg.pad_token_id;
  return ts;
}

uint32_t sampling_seed(const po::variables_map& vm, const std::string& option) {
  const int64_t seed = vm[option].as<int64_t>();
  ZO2_REQUIRE(seed >= 0 && seed <= 0xFFFFFFFFLL, "option --", option, ": ", seed,
              " is not a numpy seed (0 .. 4294967295)");
  return static_cast<uint32_t>(seed);
}

JsonlOptions jsonl_options(const TaskSetup& ts, const ModelSetup& ms) {
  JsonlOptions jo;
  jo.bos_id = ts.tok ? ts.tok->special().bos : ms.cfg.bos_token_id;
  jo.vocab_size = ms.cfg.vocab_size;
  if (ts.tok) {
    std::shared_ptr<const Tokenizer> tok = ts.tok;
    jo.encode = [tok](const std::string& s) {
      std::vector<int64_t> ids = tok->encode(s);
      ids.erase(ids.begin());  // the BOS: load_jsonl puts it in front of whole sequences only
      return ids;
    };
  }
  return jo;
}

}  // namespace zo2::cli
