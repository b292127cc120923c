#include "data/tasks.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "data/pystr.h"

namespace zo2 {

namespace {

using nlohmann::json;

const json& field(const json& rec, const char* key, const std::string& where) {
  ZO2_REQUIRE(rec.is_object(), where, ": each line must be a JSON object");
  ZO2_REQUIRE(rec.contains(key), where, ": field '", key, "' is missing");
  return rec[key];
}

std::string str(const json& rec, const char* key, const std::string& where) {
  const json& v = field(rec, key, where);
  ZO2_REQUIRE(v.is_string(), where, ": field '", key, "' must be a string, got ", v.dump());
  return v.get<std::string>();
}

// A class label in [0, n).
int64_t label(const json& rec, const char* key, int64_t n, const Task& t, const std::string& where) {
  const json& v = field(rec, key, where);
  ZO2_REQUIRE(v.is_number_integer(), where, ": field '", key, "' must be an integer, got ", v.dump());
  const int64_t l = v.get<int64_t>();
  ZO2_REQUIRE(l >= 0 && l < n, where, ": field '", key, "': unknown label ", l, " (", t.name, " has labels 0..", n - 1,
              l < 0 ? "; a test split has no labels" : "", ")");
  return l;
}

// A non-empty list of strings: rec[key], or rec[key][sub] when `sub` is given (SQuAD's answers.text).
std::vector<std::string> strings(const json& rec, const char* key, const char* sub, const std::string& where) {
  const json* v = &field(rec, key, where);
  std::string name = key;
  if (sub) {
    ZO2_REQUIRE(v->is_object() && v->contains(sub), where, ": field '", key, "' must be an object with '", sub, "'");
    v = &(*v)[sub];
    name += std::string(".") + sub;
  }
  ZO2_REQUIRE(v->is_array(), where, ": field '", name, "' must be a list of strings, got ", v->dump());
  ZO2_REQUIRE(!v->empty(), where, ": field '", name, "' is empty");
  std::vector<std::string> out;
  for (const json& x : *v) {
    ZO2_REQUIRE(x.is_string(), where, ": field '", name, "' holds ", x.dump(), ", not a string");
    out.push_back(x.get<std::string>());
  }
  return out;
}

// Python's s.replace(from, to).
std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

// Templates whose candidates are verbalizer words appended to the prompt (SST-2 adds a space).
TaskText verbalized(std::string prompt, const std::vector<const char*>& words, const char* sep, int64_t gold) {
  TaskText t;
  for (const char* w : words) t.options.push_back(prompt + sep + w);
  t.prompt = std::move(prompt);
  t.correct = {gold};
  return t;
}

// CopaTemplate.capitalize (capitalization "correct"): the first space-separated word lower-cased
// unless it is "I".
std::string copa_candidate(const std::string& c) {
  const size_t sp = c.find(' ');
  const std::string first = c.substr(0, sp);
  if (first == "I") return c;
  return py::lower(first) + (sp == std::string::npos ? "" : c.substr(sp));
}

TaskText generation(std::string prompt, std::vector<std::string> answers) {
  TaskText t;
  t.options = {prompt + " " + answers[0] + "\n"};
  t.prompt = std::move(prompt);
  t.correct = {0};
  t.answers = std::move(answers);
  return t;
}

std::string key_of(const std::string& name) {
  std::string k;
  for (char c : name)
    if (c != '-' && c != '_') k += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return k;
}

}  // namespace

const std::vector<Task>& all_tasks() {
  static const std::vector<Task> tasks = {
      {TaskId::kSST2, "SST2", "glue/sst2", false, true, 500},
      {TaskId::kRTE, "RTE", "super_glue/rte", false, true, 500},
      {TaskId::kCB, "CB", "super_glue/cb", false, true, 100},
      {TaskId::kBoolQ, "BoolQ", "boolq", false, true, 500},
      {TaskId::kWSC, "WSC", "super_glue/wsc.fixed", false, true, 500},
      {TaskId::kWIC, "WIC", "super_glue/wic", false, true, 500},
      {TaskId::kMultiRC, "MultiRC", "super_glue/multirc", false, true, 500},
      {TaskId::kCopa, "Copa", "super_glue/copa", false, false, 100},
      {TaskId::kReCoRD, "ReCoRD", "super_glue/record", false, false, 500},
      {TaskId::kSQuAD, "SQuAD", "squad", true, false, 500},
      {TaskId::kDROP, "DROP", "drop", true, false, 500},
  };
  return tasks;
}

const Task& find_task(const std::string& name) {
  std::string names;
  for (const Task& t : all_tasks()) {
    if (key_of(t.name) == key_of(name)) return t;
    names += std::string(names.empty() ? "" : ", ") + t.name;
  }
  throw_error("unknown task '", name, "' (one of ", names, ")");
}

TaskText render(const Task& task, const json& rec, const std::string& where) {
  auto s = [&](const char* key) { return str(rec, key, where); };
  auto lab = [&](int64_t n) { return label(rec, "label", n, task, where); };
  switch (task.id) {
    case TaskId::kSST2: {
      const std::string text = py::strip(s("sentence"));
      return verbalized(text + " It was", {"terrible", "great"}, " ", lab(2));
    }
    case TaskId::kRTE:
      return verbalized(s("premise") + "\nDoes this mean that \"" + s("hypothesis") + "\" is true? Yes or No?\n",
                        {"Yes", "No"}, "", lab(2));
    case TaskId::kCB:
      return verbalized("Suppose " + s("premise") + " Can we infer that \"" + s("hypothesis") +
                            "\"? Yes, No, or Maybe?\n",
                        {"Yes", "No", "Maybe"}, "", lab(3));
    case TaskId::kBoolQ: {  // BoolQTemplateV3
      std::string q = s("question");
      if (q.empty() || q.back() != '?') q += "?";
      const json& a = field(rec, "answer", where);
      ZO2_REQUIRE(a.is_boolean(), where, ": field 'answer' must be true or false, got ", a.dump());
      return verbalized(s("passage") + " " + py::upper_first(q) + "\n", {"Yes", "No"}, "", a.get<bool>() ? 0 : 1);
    }
    case TaskId::kWSC:
      return verbalized(s("text") + "\nIn the previous sentence, does the pronoun \"" + py::lower(s("span2_text")) +
                            "\" refer to " + s("span1_text") + "? Yes or No?\n",
                        {"No", "Yes"}, "", lab(2));
    case TaskId::kWIC:
      return verbalized("Does the word \"" + s("word") + "\" have the same meaning in these two sentences? Yes, No?\n" +
                            s("sentence1") + "\n" + s("sentence2") + "\n",
                        {"No", "Yes"}, "", lab(2));
    case TaskId::kMultiRC:
      return verbalized(s("paragraph") + "\nQuestion: " + s("question") + "\nI found this answer \"" + s("answer") +
                            "\". Is that correct? Yes or No?\n",
                        {"No", "Yes"}, "", lab(2));
    case TaskId::kCopa: {
      std::string premise = py::rstrip(s("premise"));
      if (!premise.empty() && premise.back() == '.') premise.pop_back();
      const std::string q = s("question");
      ZO2_REQUIRE(q == "cause" || q == "effect", where, ": field 'question' must be \"cause\" or \"effect\", got \"",
                  q, "\"");
      TaskText t;
      t.prompt = premise + (q == "effect" ? " so " : " because ");
      const std::vector<std::string> choices = {s("choice1"), s("choice2")};
      for (const std::string& c : choices) t.options.push_back(t.prompt + copa_candidate(c));
      // MeZO: candidates.index(choice{label+1}), the first equal choice
      const int64_t gold = lab(2);
      t.correct = {choices[0] == choices[gold] ? 0 : gold};
      return t;
    }
    case TaskId::kReCoRD: {  // ReCoRDTemplateGPT3
      const std::string passage = replace_all(s("passage"), "@highlight\n", "- ");
      const std::string query = s("query");
      const std::vector<std::string> entities = strings(rec, "entities", nullptr, where);
      TaskText t;
      t.prompt = passage + "\n-";
      for (const std::string& e : entities) t.options.push_back(passage + "\n- " + replace_all(query, "@placeholder", e));
      for (const std::string& a : strings(rec, "answers", nullptr, where)) {
        auto it = std::find(entities.begin(), entities.end(), a);
        ZO2_REQUIRE(it != entities.end(), where, ": field 'answers': \"", a, "\" is not one of the entities");
        t.correct.push_back(it - entities.begin());
      }
      return t;
    }
    case TaskId::kSQuAD:  // SQuADv2Template
      return generation("Title: " + s("title") + "\nContext: " + s("context") + "\nQuestion: " +
                            py::strip(s("question")) + "\nAnswer:",
                        strings(rec, "answers", "text", where));
    case TaskId::kDROP:
      return generation("Passage: " + s("passage") + "\nQuestion: " + py::strip(s("question")) + "\nAnswer:",
                        strings(rec, "answers_spans", "spans", where));
  }
  throw_error(where, ": task ", task.name, " has no template");
}

}  // namespace zo2
