// MeZO's task templates, encoding and sampling. Expected prompt strings are written out by hand from
// /work/shared/reference/zo2_mezo.md §5.2 (MeZO's templates.py); numpy permutations and Python string
// behaviour come from tests/data/tasks/reference.json (scripts/ref/make_task_ref.py, CPython + numpy).
// Everything compared is text or integer ids: comparisons are exact.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/test_util.h"
#include "data/pystr.h"
#include "data/task_data.h"
#include "data/tasks.h"
#include "text/tokenizer.h"

namespace zo2 {
namespace {

using nlohmann::json;

const json& reference() {
  static const json j = [] {
    std::ifstream in(test::data_path("tasks/reference.json"));
    return json::parse(in);
  }();
  return j;
}

// GPT-2's vocabulary with MeZO's OPT convention: BOS id 0 in front of every encoding.
const Tokenizer& tok() {
  static const Tokenizer t(test::data_path("tokenizer/gpt2"), TokenizerOptions{0, true});
  return t;
}
TextEncoder encoder() {
  return [](const std::string& s) { return tok().encode(s); };
}

using test::expect_error;

struct Case {
  const char* task;
  const char* record;
  std::string prompt;
  std::vector<std::string> options;
  std::vector<int64_t> correct;
  std::vector<std::string> option_text;  // what the option tokens decode to (candidate scoring / LM loss)
};

// One hand-written record per task and the strings MeZO's template makes of it (§5.2).
std::vector<Case> cases() {
  return {
      {"SST2", R"({"sentence": "  a gripping , funny film  ", "label": 1, "idx": 3})",
       "a gripping , funny film It was",
       {"a gripping , funny film It was terrible", "a gripping , funny film It was great"},
       {1},
       {" terrible", " great"}},
      {"RTE", R"({"premise": "Dana moved to Paris.", "hypothesis": "Dana lives in France.", "label": 0})",
       "Dana moved to Paris.\nDoes this mean that \"Dana lives in France.\" is true? Yes or No?\n",
       {"Dana moved to Paris.\nDoes this mean that \"Dana lives in France.\" is true? Yes or No?\nYes",
        "Dana moved to Paris.\nDoes this mean that \"Dana lives in France.\" is true? Yes or No?\nNo"},
       {0},
       {"Yes", "No"}},
      {"CB", R"({"premise": "It rained all day.", "hypothesis": "the ground is wet", "label": 2})",
       "Suppose It rained all day. Can we infer that \"the ground is wet\"? Yes, No, or Maybe?\n",
       {"Suppose It rained all day. Can we infer that \"the ground is wet\"? Yes, No, or Maybe?\nYes",
        "Suppose It rained all day. Can we infer that \"the ground is wet\"? Yes, No, or Maybe?\nNo",
        "Suppose It rained all day. Can we infer that \"the ground is wet\"? Yes, No, or Maybe?\nMaybe"},
       {2},
       {"Yes", "No", "Maybe"}},
      {"BoolQ", R"({"question": "is the sky blue", "passage": "The sky is blue.", "answer": true})",
       "The sky is blue. Is the sky blue?\n",
       {"The sky is blue. Is the sky blue?\nYes", "The sky is blue. Is the sky blue?\nNo"},
       {0},
       {"Yes", "No"}},
      {"WSC",
       R"({"text": "Mark told Pete a lie.", "span1_text": "Pete", "span2_text": "HIM", "span1_index": 2, "span2_index": 0, "label": 1})",
       "Mark told Pete a lie.\nIn the previous sentence, does the pronoun \"him\" refer to Pete? Yes or No?\n",
       {"Mark told Pete a lie.\nIn the previous sentence, does the pronoun \"him\" refer to Pete? Yes or No?\nNo",
        "Mark told Pete a lie.\nIn the previous sentence, does the pronoun \"him\" refer to Pete? Yes or No?\nYes"},
       {1},
       {"No", "Yes"}},
      {"WIC", R"({"word": "bank", "sentence1": "A river bank.", "sentence2": "A bank loan.", "label": 0})",
       "Does the word \"bank\" have the same meaning in these two sentences? Yes, No?\nA river bank.\nA bank loan.\n",
       {"Does the word \"bank\" have the same meaning in these two sentences? Yes, No?\nA river bank.\nA bank loan.\nNo",
        "Does the word \"bank\" have the same meaning in these two sentences? Yes, No?\nA river bank.\nA bank loan.\nYes"},
       {0},
       {"No", "Yes"}},
      {"MultiRC",
       R"({"paragraph": "Tom has a cat.", "question": "What pet?", "answer": "a cat", "label": 1, "idx": {"paragraph": 0}})",
       "Tom has a cat.\nQuestion: What pet?\nI found this answer \"a cat\". Is that correct? Yes or No?\n",
       {"Tom has a cat.\nQuestion: What pet?\nI found this answer \"a cat\". Is that correct? Yes or No?\nNo",
        "Tom has a cat.\nQuestion: What pet?\nI found this answer \"a cat\". Is that correct? Yes or No?\nYes"},
       {1},
       {"No", "Yes"}},
      // COPA: trailing '.' of the premise dropped, " so " for an effect, the first word of a choice
      // lower-cased unless it is "I".
      {"Copa",
       R"({"premise": "My body cast a shadow over the grass. ", "choice1": "The sun was rising.", "choice2": "I mowed it.", "question": "effect", "label": 0})",
       "My body cast a shadow over the grass so ",
       {"My body cast a shadow over the grass so the sun was rising.",
        "My body cast a shadow over the grass so I mowed it."},
       {0},
       {" the sun was rising.", " I mowed it."}},
      {"Copa", R"({"premise": "The man fell", "choice1": "He TRIPPED.", "choice2": "He won.", "question": "cause", "label": 0})",
       "The man fell because ",
       {"The man fell because he TRIPPED.", "The man fell because he won."},
       {0},
       {" he TRIPPED.", " he won."}},
      // ReCoRD (GPT-3 style): "@highlight\n" -> "- ", candidates fill @placeholder.
      {"ReCoRD",
       R"({"passage": "Rain in Oslo.\n@highlight\nOslo wet\n@highlight\nNorway cold", "query": "@placeholder stayed home.", "entities": ["Oslo", "Norway", "Oslo"], "answers": ["Norway"]})",
       "Rain in Oslo.\n- Oslo wet\n- Norway cold\n-",
       {"Rain in Oslo.\n- Oslo wet\n- Norway cold\n- Oslo stayed home.",
        "Rain in Oslo.\n- Oslo wet\n- Norway cold\n- Norway stayed home.",
        "Rain in Oslo.\n- Oslo wet\n- Norway cold\n- Oslo stayed home."},
       {1},
       {" Oslo stayed home.", " Norway stayed home.", " Oslo stayed home."}},
      {"SQuAD",
       R"({"id": "x", "title": "Denver", "context": "Denver won.", "question": "  Who won? ", "answers": {"text": ["Denver", "Denver Broncos"], "answer_start": [0, 0]}})",
       "Title: Denver\nContext: Denver won.\nQuestion: Who won?\nAnswer:",
       {"Title: Denver\nContext: Denver won.\nQuestion: Who won?\nAnswer: Denver\n"},
       {0},
       {" Denver\n"}},
      {"DROP",
       R"({"passage": "3 plus 4.", "question": "How many? ", "answers_spans": {"spans": ["7", "seven"], "types": ["number", "span"]}})",
       "Passage: 3 plus 4.\nQuestion: How many?\nAnswer:",
       {"Passage: 3 plus 4.\nQuestion: How many?\nAnswer: 7\n"},
       {0},
       {" 7\n"}},
  };
}

TEST(Tasks, TemplatesMakeMezoStrings) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.task);
    const TaskText t = render(find_task(c.task), json::parse(c.record), "x.jsonl:1");
    EXPECT_EQ(t.prompt, c.prompt);
    EXPECT_EQ(t.options, c.options);
    EXPECT_EQ(t.correct, c.correct);
  }
  // BoolQ: an existing '?' is kept; only the first character is capitalised.
  const TaskText b = render(find_task("boolq"), json::parse(R"({"question": "does it? ok?", "passage": "P", "answer": false})"), "w");
  EXPECT_EQ(b.prompt, "P Does it? ok?\n");
  EXPECT_EQ(b.correct, std::vector<int64_t>{1});
  // ReCoRD: every answer that is an entity (first occurrence) is correct.
  const TaskText r = render(find_task("record"), json::parse(R"({"passage": "p", "query": "@placeholder", "entities": ["A", "B", "C"], "answers": ["C", "A", "C"]})"), "w");
  EXPECT_EQ(r.correct, (std::vector<int64_t>{2, 0, 2}));
  const TaskText s = render(find_task("squad"), json::parse(cases()[10].record), "w");
  EXPECT_EQ(s.answers, (std::vector<std::string>{"Denver", "Denver Broncos"}));
}

TEST(Tasks, EncodingMarksTheOptionTokensAsMezoCountsThem) {
  TaskEncoding opt;
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.task);
    const Task& task = find_task(c.task);
    const TaskText t = render(task, json::parse(c.record), "x.jsonl:1");
    const TaskExample x = encode_task(task, t, encoder(), opt, "x.jsonl:1");
    // option_len = len(encode(option.strip(' '))) - len(encode(prompt.strip(' '))), counted here with the
    // tokenizer directly; the sequence is the whole option string, leading whitespace removed.
    const int64_t prompt_len = static_cast<int64_t>(tok().encode(py::strip_spaces(c.prompt)).size());
    const std::vector<Sequence>& seqs = task.generation ? x.gold_option.candidates : x.candidates.candidates;
    ASSERT_EQ(seqs.size(), c.options.size());
    for (size_t k = 0; k < seqs.size(); ++k) {
      const std::string counted = task.generation ? c.options[k] : py::strip_spaces(c.options[k]);
      const std::vector<int64_t> ids = tok().encode(py::lstrip(counted));
      const int64_t option_len = static_cast<int64_t>(tok().encode(counted).size()) - prompt_len;
      EXPECT_EQ(seqs[k].ids, ids);
      EXPECT_EQ(seqs[k].ids[0], 0);  // MeZO's BOS for OPT
      EXPECT_EQ(seqs[k].target_begin, static_cast<int64_t>(ids.size()) - option_len);
      const std::vector<int64_t> option(ids.begin() + seqs[k].target_begin, ids.end());
      EXPECT_EQ(tok().decode(option), c.option_text[k]);
    }
    if (task.generation) {
      EXPECT_FALSE(x.candidates.is_classification());
      EXPECT_EQ(x.prompt, tok().encode(c.prompt));
      EXPECT_FALSE(x.answers.empty());
    } else {
      EXPECT_EQ(x.candidates.gold, c.correct[0]);
      EXPECT_EQ(x.correct, c.correct);
      ASSERT_EQ(x.gold_option.candidates.size(), 1u);
      EXPECT_EQ(x.gold_option.candidates[0].ids, seqs[c.correct[0]].ids);
      EXPECT_FALSE(x.gold_option.is_classification());
    }
    // mezo.sh: LM-style training for Copa, ReCoRD, SQuAD, DROP; classification for the rest.
    EXPECT_EQ(&x.train_form(task.train_as_classification), task.train_as_classification ? &x.candidates : &x.gold_option);
  }
}

TEST(Tasks, LongSequencesKeepBosAndTheirEnd) {
  const Task& sst2 = find_task("sst2");
  std::string sentence;
  for (int i = 0; i < 40; ++i) sentence += "word ";
  const TaskText t = render(sst2, json{{"sentence", sentence}, {"label", 0}}, "w");
  TaskEncoding opt;
  opt.max_length = 16;
  const TaskExample x = encode_task(sst2, t, encoder(), opt, "w");
  const std::vector<int64_t> full = tok().encode(t.options[0]);
  const Sequence& s = x.candidates.candidates[0];
  ASSERT_EQ(s.ids.size(), 16u);
  EXPECT_EQ(s.ids[0], 0);
  EXPECT_EQ(std::vector<int64_t>(s.ids.begin() + 1, s.ids.end()), std::vector<int64_t>(full.end() - 15, full.end()));
  EXPECT_EQ(tok().decode({s.ids.begin() + s.target_begin, s.ids.end()}), " terrible");
  // Generation keeps max_new_tokens free: prompt and answer sequence get max_length - max_new_tokens.
  opt.max_new_tokens = 6;
  const Task& squad = find_task("squad");
  const TaskText q = render(squad, json{{"title", "T"}, {"context", sentence}, {"question", "q"},
                                        {"answers", {{"text", {"word"}}}}}, "w");
  const TaskExample g = encode_task(squad, q, encoder(), opt, "w");
  const std::vector<int64_t> prompt = tok().encode(q.prompt);
  std::vector<int64_t> want = {0};
  want.insert(want.end(), prompt.end() - 9, prompt.end());
  EXPECT_EQ(g.prompt, want);
  EXPECT_EQ(g.gold_option.candidates[0].ids.size(), 10u);
  EXPECT_EQ(tok().decode({g.gold_option.candidates[0].ids.end() - 2, g.gold_option.candidates[0].ids.end()}), " word\n");
}

TEST(Tasks, FindTaskByAnyCase) {
  EXPECT_EQ(find_task("sst-2").id, TaskId::kSST2);
  EXPECT_EQ(find_task("COPA").id, TaskId::kCopa);
  EXPECT_EQ(find_task("re_cord").id, TaskId::kReCoRD);
  EXPECT_EQ(all_tasks().size(), 11u);
  expect_error([] { find_task("mnli"); }, {"unknown task 'mnli' (one of SST2, RTE"});
  EXPECT_EQ(find_task("cb").num_dev, 100);
  EXPECT_EQ(find_task("copa").num_dev, 100);
  EXPECT_EQ(find_task("rte").num_dev, 500);
  EXPECT_TRUE(find_task("drop").generation);
  EXPECT_STREQ(find_task("squad").metric(), "f1");
}

TEST(Tasks, BadRecordsNameFileLineAndField) {
  auto bad = [](const char* task, const char* record) {
    return [=] { render(find_task(task), json::parse(record), "dev.jsonl:7"); };
  };
  expect_error(bad("sst2", R"({"label": 1})"), {"dev.jsonl:7: field 'sentence' is missing"});
  expect_error(bad("sst2", R"({"sentence": 5, "label": 1})"), {"dev.jsonl:7: field 'sentence' must be a string"});
  expect_error(bad("sst2", R"({"sentence": "s", "label": 2})"), {"dev.jsonl:7: field 'label': unknown label 2 (SST2 has labels 0..1)"});
  expect_error(bad("rte", R"({"premise": "p", "hypothesis": "h", "label": -1})"), {"a test split has no labels"});
  expect_error(bad("cb", R"({"premise": "p", "hypothesis": "h", "label": "2"})"), {"field 'label' must be an integer"});
  expect_error(bad("boolq", R"({"question": "q", "passage": "p", "answer": 1})"), {"field 'answer' must be true or false"});
  expect_error(bad("copa", R"({"premise": "p", "choice1": "a", "choice2": "b", "question": "why", "label": 0})"),
               {"field 'question' must be \"cause\" or \"effect\""});
  expect_error(bad("record", R"({"passage": "p", "query": "q", "entities": ["A"], "answers": ["B"]})"),
               {"dev.jsonl:7: field 'answers': \"B\" is not one of the entities"});
  expect_error(bad("record", R"({"passage": "p", "query": "q", "entities": [], "answers": ["B"]})"), {"field 'entities' is empty"});
  expect_error(bad("squad", R"({"title": "t", "context": "c", "question": "q", "answers": {"text": []}})"),
               {"field 'answers.text' is empty"});
  expect_error(bad("drop", R"({"passage": "p", "question": "q", "answers_spans": ["7"]})"),
               {"field 'answers_spans' must be an object with 'spans'"});
  expect_error(bad("wic", R"([1, 2])"), {"dev.jsonl:7: each line must be a JSON object"});

  const std::string dir = test::temp_dir("tasks_bad");
  std::ofstream(dir + "/a.jsonl") << R"({"sentence": "fine", "label": 0})" << "\n\n" << R"({"sentence": "x", "label": 1)" << "\n";
  expect_error([&] { load_task_file(find_task("sst2"), dir + "/a.jsonl", -1, 0, encoder(), {}); }, {"a.jsonl:3: invalid JSON"});
  std::ofstream(dir + "/b.jsonl") << R"({"sentence": "fine", "label": 0})" << "\n" << R"({"sentence": "x", "label": 9})" << "\n";
  expect_error([&] { load_task_file(find_task("sst2"), dir + "/b.jsonl", -1, 0, encoder(), {}); },
               {"b.jsonl:2: field 'label': unknown label 9"});
  expect_error([&] { load_task_file(find_task("sst2"), dir + "/none.jsonl", -1, 0, encoder(), {}); }, {"none.jsonl: cannot open"});
  // A candidate that adds no token to the prompt.
  TaskText empty{"abc", {"abc", "abc x"}, {0}, {}};
  expect_error([&] { encode_task(find_task("sst2"), empty, encoder(), {}, "f:2"); }, {"f:2: candidate 0 adds no token"});
}

TEST(Tasks, NumpyPermutationMatchesNumpyBitForBit) {
  for (const json& p : reference()["permutations"]) {
    const int64_t n = p["n"].get<int64_t>();
    const uint32_t seed = p["seed"].get<uint32_t>();
    std::vector<int64_t> got = numpy_permutation(n, seed);
    const std::vector<int64_t> want = p["first"].get<std::vector<int64_t>>();
    got.resize(want.size());
    EXPECT_EQ(got, want) << "n=" << n << " seed=" << seed;
  }
}

TEST(Tasks, SamplingDrawsTrainDevAndEvalAsMezo) {
  const std::string dir = test::temp_dir("tasks_sample");
  const int64_t N = 30;
  {
    std::ofstream out(dir + "/train.jsonl");
    for (int64_t i = 0; i < N; ++i) out << json{{"sentence", "s" + std::to_string(i)}, {"label", i % 2}}.dump() << "\n";
  }
  const Task& sst2 = find_task("sst2");
  const std::vector<int64_t> perm = numpy_permutation(N, 5);
  const TaskSplits s = load_train_dev(sst2, dir + "/train.jsonl", 8, 4, 5, encoder(), {});
  ASSERT_EQ(s.train.size(), 8u);
  ASSERT_EQ(s.dev.size(), 4u);
  for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(s.train[i].line, perm[i] + 1);
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(s.dev[i].line, perm[8 + i] + 1);
  // Deterministic; another seed draws another set.
  const TaskSplits again = load_train_dev(sst2, dir + "/train.jsonl", 8, 4, 5, encoder(), {});
  for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(again.train[i].candidates.candidates[0].ids, s.train[i].candidates.candidates[0].ids);
  const TaskSplits other = load_train_dev(sst2, dir + "/train.jsonl", 8, 4, 6, encoder(), {});
  bool differs = false;
  for (int64_t i = 0; i < 8; ++i) differs = differs || other.train[i].line != s.train[i].line;
  EXPECT_TRUE(differs);
  // A short file: dev takes its share first (MeZO's CB: 250 records, 1000 + 100 asked).
  const TaskSplits short_file = load_train_dev(sst2, dir + "/train.jsonl", 100, 10, 5, encoder(), {});
  EXPECT_EQ(short_file.train.size(), 20u);
  EXPECT_EQ(short_file.dev.size(), 10u);
  EXPECT_EQ(short_file.dev.back().line, perm[N - 1] + 1);
  // Eval: all records in file order, or the first num of the permutation.
  const std::vector<TaskExample> all = load_task_file(sst2, dir + "/train.jsonl", -1, 5, encoder(), {});
  ASSERT_EQ(all.size(), static_cast<size_t>(N));
  EXPECT_EQ(all[3].line, 4);
  const std::vector<TaskExample> some = load_task_file(sst2, dir + "/train.jsonl", 3, 5, encoder(), {});
  ASSERT_EQ(some.size(), 3u);
  EXPECT_EQ(some[2].line, perm[2] + 1);
}

TEST(Tasks, SampleFilesLoad) {
  // tests/data/tasks/<task>.jsonl: a few records per task in the exported format.
  for (const Task& task : all_tasks()) {
    std::string stem;
    for (char c : std::string(task.name)) stem += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    SCOPED_TRACE(stem);
    const std::vector<TaskExample> xs = load_task_file(task, test::data_path("tasks/" + stem + ".jsonl"), -1, 0, encoder(), {});
    ASSERT_GE(xs.size(), 2u);
    for (const TaskExample& x : xs) {
      EXPECT_EQ(x.candidates.is_classification(), !task.generation);
      EXPECT_EQ(x.answers.empty(), !task.generation);
      EXPECT_EQ(x.gold_option.candidates.size(), 1u);
    }
  }
}

TEST(Tasks, PythonStringSemantics) {
  // Python's own results (reference.json); the simple case mapping differs on special-cased letters.
  const std::vector<std::string> special = {"Ünïcödé ÀÉÎ Straße", "ΣΊΣΥΦΟΣ", "ǅ title"};
  for (const json& r : reference()["strings"]) {
    const std::string s = r["s"].get<std::string>();
    SCOPED_TRACE(r["s"].dump());
    EXPECT_EQ(py::strip(s), r["strip"].get<std::string>());
    EXPECT_EQ(py::lstrip(s), r["lstrip"].get<std::string>());
    EXPECT_EQ(py::rstrip(s), r["rstrip"].get<std::string>());
    EXPECT_EQ(py::strip_spaces(s), r["strip_spaces"].get<std::string>());
    EXPECT_EQ(py::split(s), r["split"].get<std::vector<std::string>>());
    if (std::find(special.begin(), special.end(), s) != special.end()) continue;
    EXPECT_EQ(py::lower(s), r["lower"].get<std::string>());
    EXPECT_EQ(py::upper(s), r["upper"].get<std::string>());
    EXPECT_EQ(py::upper_first(s), r["upper_first"].get<std::string>());
  }
  expect_error([] { py::strip("ok \xC3"); }, {"ill-formed UTF-8"});
}

}  // namespace
}  // namespace zo2
