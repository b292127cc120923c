#include "data/task_data.h"

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "common/error.h"
#include "data/pystr.h"

namespace zo2 {

namespace {

// MeZO's final string: (train_prompts + "\n\n" + s).lstrip().strip(' ') with no demonstrations.
std::string final_form(const std::string& s) { return py::rstrip_spaces(py::lstrip(s)); }

// The whole sequence of `option` and its option tokens; `counted` is the string MeZO counts tokens of.
Sequence option_sequence(const std::string& counted, int64_t prompt_len, const TextEncoder& encode, int64_t max_len,
                         const std::string& what, const std::string& where) {
  const std::string full = final_form(counted);
  std::vector<int64_t> ids = encode(full);
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t option_len = (full == counted ? n : static_cast<int64_t>(encode(counted).size())) - prompt_len;
  ZO2_REQUIRE(option_len >= 1 && n - option_len >= 1, where, ": ", what,
              " adds no token to the prompt (option tokens: ", option_len, ")");
  return truncate(Sequence{std::move(ids), n - option_len}, max_len);
}

struct Record {
  std::streamoff offset;
  int64_t line;
};

// Offsets and line numbers of the non-blank lines of `path`.
std::vector<Record> index_records(std::ifstream& in) {
  std::vector<Record> recs;
  std::string line;
  for (int64_t n = 1;; ++n) {
    const std::streamoff at = in.tellg();
    if (!std::getline(in, line)) break;
    if (line.find_first_not_of(" \t\r") != std::string::npos) recs.push_back({at, n});
  }
  return recs;
}

}  // namespace

TaskExample encode_task(const Task& task, const TaskText& text, const TextEncoder& encode, const TaskEncoding& opt,
                        const std::string& where) {
  ZO2_REQUIRE(!text.options.empty() && !text.correct.empty(), where, ": no candidates");
  const std::string prompt = py::strip_spaces(text.prompt);
  const int64_t prompt_len = static_cast<int64_t>(encode(prompt).size());
  TaskExample x;
  x.correct = text.correct;
  if (task.generation) {
    const int64_t max_len = opt.max_length - opt.max_new_tokens;
    ZO2_REQUIRE(max_len >= 2, "max length ", opt.max_length, " leaves no room for ", opt.max_new_tokens,
                " new tokens");
    // MeZO tokenises the verbalized gold answer without strip(' ') here (generation_with_gold).
    x.gold_option.candidates = {option_sequence(text.options[0], prompt_len, encode, max_len, "the answer", where)};
    x.prompt = truncate(Sequence{encode(final_form(prompt)), 1}, max_len).ids;
    x.answers = text.answers;
    return x;
  }
  for (size_t c = 0; c < text.options.size(); ++c)
    x.candidates.candidates.push_back(option_sequence(py::strip_spaces(text.options[c]), prompt_len, encode,
                                                      opt.max_length, "candidate " + std::to_string(c), where));
  x.candidates.gold = x.correct[0];
  x.gold_option.candidates = {x.candidates.candidates[x.correct[0]]};
  return x;
}

std::vector<int64_t> numpy_permutation(int64_t n, uint32_t seed) {
  ZO2_REQUIRE(n >= 0 && n <= 0xFFFFFFFFLL, "permutation size ", n, " out of range");
  std::mt19937 mt(seed);  // numpy's mt19937_seed is MT19937's init_genrand, as std::mt19937(seed)
  std::vector<int64_t> a(n);
  std::iota(a.begin(), a.end(), 0);
  for (int64_t i = n - 1; i >= 1; --i) {
    uint64_t mask = static_cast<uint64_t>(i);
    for (int s = 1; s <= 16; s <<= 1) mask |= mask >> s;
    uint64_t v;
    do v = mt() & mask;
    while (v > static_cast<uint64_t>(i));
    std::swap(a[i], a[v]);
  }
  return a;
}

std::vector<TaskExample> load_task_file(const Task& task, const std::string& path, int64_t num, uint32_t seed,
                                        const TextEncoder& encode, const TaskEncoding& opt) {
  std::ifstream in(path, std::ios::binary);
  ZO2_REQUIRE(in.good(), path, ": cannot open");
  const std::vector<Record> recs = index_records(in);
  ZO2_REQUIRE(!recs.empty(), path, ": no records");
  std::vector<int64_t> order;
  if (num < 0) {
    order.resize(recs.size());
    std::iota(order.begin(), order.end(), 0);
  } else {
    order = numpy_permutation(static_cast<int64_t>(recs.size()), seed);
    if (static_cast<int64_t>(order.size()) > num) order.resize(num);
  }
  in.clear();
  std::vector<TaskExample> out;
  std::string line;
  for (int64_t i : order) {
    in.seekg(recs[i].offset);
    std::getline(in, line);
    const std::string where = path + ":" + std::to_string(recs[i].line);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw_error(where, ": invalid JSON: ", e.what());
    }
    out.push_back(encode_task(task, render(task, j, where), encode, opt, where));
    out.back().line = recs[i].line;
  }
  return out;
}

TaskSplits load_train_dev(const Task& task, const std::string& path, int64_t num_train, int64_t num_dev, uint32_t seed,
                          const TextEncoder& encode, const TaskEncoding& opt) {
  ZO2_REQUIRE(num_train >= 0 && num_dev >= 0, "--num-train and --num-dev must be >= 0");
  TaskSplits s;
  s.train = load_task_file(task, path, num_train + num_dev, seed, encode, opt);
  const int64_t n = static_cast<int64_t>(s.train.size());
  if (n < num_train + num_dev)
    std::cerr << "note: " << path << " has " << n << " records, fewer than " << num_train << " + " << num_dev
              << "; the dev set takes its " << std::min(n, num_dev) << " and training the rest (as MeZO)\n";
  const int64_t dev = std::min(n, num_dev);
  s.dev.assign(s.train.end() - dev, s.train.end());
  s.train.resize(n - dev);
  return s;
}

std::vector<Example> train_forms(const std::vector<TaskExample>& xs, bool as_classification) {
  std::vector<Example> out;
  out.reserve(xs.size());
  for (const TaskExample& x : xs) out.push_back(x.train_form(as_classification));
  return out;
}

}  // namespace zo2
