#include "data/jsonl_dataset.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace zo2 {

namespace {

using nlohmann::json;

struct Where {
  const std::string& path;
  int64_t line;
};

std::vector<int64_t> ids_field(const json& j, const char* key, const Where& w, const JsonlOptions& opt) {
  const json& v = j[key];
  ZO2_REQUIRE(v.is_array(), w.path, ":", w.line, ": field '", key, "' must be an array of token ids");
  std::vector<int64_t> ids;
  for (const json& x : v) {
    ZO2_REQUIRE(x.is_number_integer() && x.get<int64_t>() >= 0, w.path, ":", w.line, ": field '", key,
                "' holds ", x.dump(), ", not a token id");
    const int64_t id = x.get<int64_t>();
    ZO2_REQUIRE(opt.vocab_size <= 0 || id < opt.vocab_size, w.path, ":", w.line, ": field '", key, "': token id ", id,
                " is outside the vocabulary (", opt.vocab_size, ")");
    ids.push_back(id);
  }
  return ids;
}

std::vector<int64_t> text_field(const json& j, const char* key, const Where& w, const JsonlOptions& opt) {
  ZO2_REQUIRE(j[key].is_string(), w.path, ":", w.line, ": field '", key, "' must be a string");
  ZO2_REQUIRE(static_cast<bool>(opt.encode), w.path, ":", w.line, ": field '", key,
              "' is text, but no tokenizer was given (--tokenizer DIR)");
  return opt.encode(j[key].get<std::string>());
}

// Tokens of a field given either as text (`key`) or as ids (`key`_ids).
bool tokens(const json& j, const std::string& key, const Where& w, const JsonlOptions& opt, std::vector<int64_t>* out) {
  const std::string ids_key = key + "_ids";
  if (j.contains(ids_key)) {
    *out = ids_field(j, ids_key.c_str(), w, opt);
    return true;
  }
  if (j.contains(key)) {
    *out = text_field(j, key.c_str(), w, opt);
    return true;
  }
  return false;
}

Example parse_line(const json& j, const Where& w, const JsonlOptions& opt) {
  ZO2_REQUIRE(j.is_object(), w.path, ":", w.line, ": each line must be a JSON object");
  Example e;
  Sequence s;
  if (j.contains("ids") || j.contains("input_ids")) {
    s.ids = ids_field(j, j.contains("ids") ? "ids" : "input_ids", w, opt);
  } else if (j.contains("text")) {
    s.ids = {opt.bos_id};
    const std::vector<int64_t> t = text_field(j, "text", w, opt);
    s.ids.insert(s.ids.end(), t.begin(), t.end());
  } else {
    std::vector<int64_t> prompt;
    ZO2_REQUIRE(tokens(j, "prompt", w, opt, &prompt), w.path, ":", w.line,
                ": no 'ids', 'text', 'prompt' or 'prompt_ids' field");
    prompt.insert(prompt.begin(), opt.bos_id);
    std::vector<int64_t> completion;
    if (tokens(j, "completion", w, opt, &completion)) {
      s.ids = prompt;
      s.ids.insert(s.ids.end(), completion.begin(), completion.end());
      s.target_begin = static_cast<int64_t>(prompt.size());
      ZO2_REQUIRE(!completion.empty(), w.path, ":", w.line, ": field 'completion' is empty");
    } else {
      const bool as_ids = j.contains("candidate_ids");
      const char* key = as_ids ? "candidate_ids" : "candidates";
      ZO2_REQUIRE(j.contains(key), w.path, ":", w.line, ": a prompt needs 'completion' or 'candidates'");
      ZO2_REQUIRE(j[key].is_array() && j[key].size() >= 2, w.path, ":", w.line, ": field '", key,
                  "' must list at least two candidates");
      ZO2_REQUIRE(j.contains("label") && j["label"].is_number_integer(), w.path, ":", w.line,
                  ": field 'label' (index of the correct candidate) is missing or not an integer");
      e.gold = j["label"].get<int64_t>();
      ZO2_REQUIRE(e.gold >= 0 && e.gold < static_cast<int64_t>(j[key].size()), w.path, ":", w.line, ": label ", e.gold,
                  " is not a candidate index (", j[key].size(), " candidates)");
      for (size_t c = 0; c < j[key].size(); ++c) {
        json one = {{"x", j[key][c]}};
        std::vector<int64_t> opt_ids = as_ids ? ids_field(one, "x", w, opt) : text_field(one, "x", w, opt);
        ZO2_REQUIRE(!opt_ids.empty(), w.path, ":", w.line, ": candidate ", c, " is empty");
        Sequence cs;
        cs.ids = prompt;
        cs.ids.insert(cs.ids.end(), opt_ids.begin(), opt_ids.end());
        cs.target_begin = static_cast<int64_t>(prompt.size());
        e.candidates.push_back(std::move(cs));
      }
      return e;
    }
  }
  ZO2_REQUIRE(s.ids.size() >= 2, w.path, ":", w.line, ": a sequence needs at least two tokens");
  e.candidates.push_back(std::move(s));
  return e;
}

}  // namespace

std::vector<Example> load_jsonl(const std::string& path, const JsonlOptions& opt) {
  std::ifstream in(path);
  ZO2_REQUIRE(in.good(), path, ": cannot open");
  std::vector<Example> out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      throw_error(path, ":", n, ": invalid JSON: ", e.what());
    }
    out.push_back(parse_line(j, Where{path, n}, opt));
  }
  ZO2_REQUIRE(!out.empty(), path, ": no examples");
  return out;
}

}  // namespace zo2
