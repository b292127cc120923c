// GPT-2 byte-level BPE against independent references (tests/data/tokenizer/README.md):
//   expected.json: ids and decodes from the npm gpt-3-encoder (scripts/ref/make_tokenizer_ref.js),
//   splits.json:   pre-tokenisation by Python's `regex`, HF's engine (scripts/ref/make_tokenizer_ref.py).
// Token ids are integers: every comparison is exact.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "common/error.h"
#include "common/test_util.h"
#include "launcher/commands.h"
#include "text/tokenizer.h"

namespace zo2 {
namespace {

using nlohmann::json;
using Ids = std::vector<int64_t>;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Lines split on '\n' only, as both reference scripts do.
std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(text.substr(start, nl - start));
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

std::string gpt2_dir() { return test::data_path("tokenizer/gpt2"); }
std::string corpus_text() { return read_text(test::data_path("tokenizer/corpus.txt")); }
const json& expected() {
  static const json j = json::parse(read_text(test::data_path("tokenizer/expected.json")));
  return j;
}
const json& splits() {
  static const json j = json::parse(read_text(test::data_path("tokenizer/splits.json")));
  return j;
}
const Tokenizer& gpt2() {
  static const Tokenizer t(gpt2_dir());
  return t;
}

// A tokenizer directory with vocab.json, merges.txt and optional config files.
std::string make_dir(const std::string& tag, const std::string& vocab, const std::string& merges,
                     const std::string& config = "", const std::string& special_map = "") {
  const std::string dir = test::temp_dir(tag);
  write_text(dir + "/vocab.json", vocab);
  write_text(dir + "/merges.txt", merges);
  if (!config.empty()) write_text(dir + "/tokenizer_config.json", config);
  if (!special_map.empty()) write_text(dir + "/special_tokens_map.json", special_map);
  return dir;
}

// OPT's layout over GPT-2's tokens: fairseq's four specials first, every GPT-2 id shifted by 4. OPT's
// real vocab.json orders tokens by fairseq frequency instead; only the conventions are tested here.
constexpr int64_t kShift = 4;
std::string make_opt_like_dir(const std::string& tag, const std::string& config = "",
                              const std::string& special_map = "") {
  json vocab = {{"<s>", 0}, {"<pad>", 1}, {"</s>", 2}, {"<unk>", 3}};
  const json gpt2_vocab = json::parse(read_text(gpt2_dir() + "/vocab.json"));
  for (const auto& [token, id] : gpt2_vocab.items())
    vocab[token] = id.get<int64_t>() + kShift;
  return make_dir(tag, vocab.dump(), read_text(gpt2_dir() + "/merges.txt"), config, special_map);
}

const std::string& opt_like_dir() {  // shared by the tests that need no config files
  static const std::string dir = make_opt_like_dir("tok_opt");
  return dir;
}

Ids shifted(const json& ids, int64_t bos = -1) {
  Ids out;
  if (bos >= 0) out.push_back(bos);
  for (const json& id : ids) out.push_back(id.get<int64_t>() + kShift);
  return out;
}

// EXPECT_THROW plus a check that the one-line message names what is at fault.
template <class F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no zo2::Error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

// ---------------------------------------------------------------- against the references

TEST(Tokenizer, IdsMatchReferenceEncoder) {
  const auto lines = split_lines(corpus_text());
  const json& ref = expected()["lines"];
  ASSERT_EQ(lines.size(), ref.size()) << "regenerate expected.json (scripts/ref/make_tokenizer_ref.js)";
  ASSERT_FALSE(gpt2().special().add_bos);
  for (size_t i = 0; i < lines.size(); ++i)
    EXPECT_EQ(gpt2().encode(lines[i]), ref[i].get<Ids>()) << "corpus.txt line " << i + 1 << ": " << lines[i];
  EXPECT_EQ(gpt2().encode(corpus_text()), expected()["whole"].get<Ids>());
}

TEST(Tokenizer, PreTokenizationMatchesPythonRegex) {
  const auto lines = split_lines(corpus_text());
  const auto edge = split_lines(read_text(test::data_path("tokenizer/split_edge.txt")));
  ASSERT_EQ(lines.size(), splits()["corpus"].size());
  ASSERT_EQ(edge.size(), splits()["edge"].size());
  for (size_t i = 0; i < lines.size(); ++i)
    EXPECT_EQ(gpt2().pre_tokenize(lines[i]), splits()["corpus"][i].get<std::vector<std::string>>())
        << "corpus.txt line " << i + 1;
  // U+0085 and U+FEFF (where JS's \s differs from Python's) and U+180E (where PCRE2's \s differs).
  for (size_t i = 0; i < edge.size(); ++i)
    EXPECT_EQ(gpt2().pre_tokenize(edge[i]), splits()["edge"][i].get<std::vector<std::string>>())
        << "split_edge.txt line " << i + 1;
  EXPECT_EQ(gpt2().pre_tokenize(corpus_text()), splits()["whole"].get<std::vector<std::string>>());
}

TEST(Tokenizer, DecodeInvertsEncodeAndReplacesIllFormedUtf8) {
  for (const std::string& line : split_lines(corpus_text())) EXPECT_EQ(gpt2().decode(gpt2().encode(line)), line);
  EXPECT_EQ(gpt2().decode(gpt2().encode(corpus_text())), corpus_text());
  // Ill-formed UTF-8 from partial tokens: one U+FFFD per maximal ill-formed subpart, as the reference.
  for (const json& c : expected()["decode"])
    EXPECT_EQ(gpt2().decode(c["ids"].get<Ids>()), c["text"].get<std::string>()) << c["ids"].dump();
}

// zo2's choice (docs/tokenizer.md): a literal "<|endoftext|>" is text, not id 50256.
TEST(Tokenizer, LiteralSpecialTokenTextIsNotSplitOut) {
  const int64_t eot = *gpt2().token_id("<|endoftext|>");
  const Ids ids = gpt2().encode("<|endoftext|>");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), eot), 0);
  EXPECT_GT(ids.size(), 1u);
}

TEST(Tokenizer, ConcurrentEncodersAgree) {
  const auto lines = split_lines(corpus_text());
  Tokenizer moved(gpt2_dir());  // fresh, empty piece cache
  const Tokenizer tok = std::move(moved);
  std::vector<std::vector<Ids>> got(4, std::vector<Ids>(lines.size()));
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep)
        for (size_t k = 0; k < lines.size(); ++k) {
          const size_t i = (k + t * 7) % lines.size();  // threads start at different lines
          got[t][i] = tok.encode(lines[i]);
        }
    });
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < got.size(); ++t)
    for (size_t i = 0; i < lines.size(); ++i)
      EXPECT_EQ(got[t][i], expected()["lines"][i].get<Ids>()) << "thread " << t << ", line " << i + 1;
}

TEST(Tokenizer, MergesFileVariantsGiveSameIds) {
  // CRLF line ends and no final newline; HF's split("\n")[1:-1] would drop that last merge, zo2 keeps it.
  std::string merges = read_text(gpt2_dir() + "/merges.txt");
  std::string crlf;
  for (char c : merges) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  crlf.resize(crlf.size() - 2);
  const Tokenizer tok(make_dir("tok_crlf", read_text(gpt2_dir() + "/vocab.json"), crlf,
                               read_text(gpt2_dir() + "/tokenizer_config.json")));
  EXPECT_EQ(tok.encode(corpus_text()), expected()["whole"].get<Ids>());
}

// ---------------------------------------------------------------- merge rules on a toy vocabulary

TEST(Tokenizer, MergesLowestRankFirstAndAllOccurrencesPerRound) {
  const std::string vocab = R"({"a":0,"b":1,"c":2,"aa":3,"bc":4,"ab":5,"aaaa":6,"<unk>":7})";
  const std::string config = R"({"unk_token":"<unk>","add_bos_token":false})";
  const Tokenizer tok(make_dir("tok_toy", vocab, "#version: 0.2\nb c\na b\na a\naa aa\n", config));
  EXPECT_EQ(tok.encode("abc"), (Ids{0, 4}));        // "b c" outranks "a b"
  EXPECT_EQ(tok.encode("aaa"), (Ids{3, 0}));        // left to right, no overlap
  EXPECT_EQ(tok.encode("aaaaa"), (Ids{6, 0}));      // aa aa a -> aaaa a
  EXPECT_EQ(tok.encode("abd"), (Ids{5, 7}));        // "d" is not in the vocabulary: unk
  // A merge table where a merged symbol's pair outranks its parent: merging one occurrence per round
  // would give "aba b"; HF merges every "a b" first.
  const Tokenizer odd(make_dir("tok_toy_odd", R"({"a":0,"b":1,"ab":2,"aba":3})", "#version: 0.2\nab a\na b\n",
                               R"({"add_bos_token":false})"));
  EXPECT_EQ(odd.encode("abab"), (Ids{2, 2}));
  const Tokenizer no_unk(
      make_dir("tok_toy_nounk", vocab, "#version: 0.2\na b\n", R"({"add_bos_token":false,"unk_token":null})"));
  expect_error([&] { no_unk.encode("abd"); }, "symbol 'd'");
}

// ---------------------------------------------------------------- OPT conventions

TEST(Tokenizer, OptDefaultsPrependEosAsBos) {
  const Tokenizer tok(opt_like_dir());
  EXPECT_EQ(tok.special().bos, 2);
  EXPECT_EQ(tok.special().eos, 2);
  EXPECT_EQ(tok.special().unk, 2);
  EXPECT_EQ(tok.special().pad, 1);
  const json& hello = expected()["lines"][0];  // "Hello world"
  EXPECT_EQ(tok.encode("Hello world"), shifted(hello, 2));
  EXPECT_EQ(tok.decode(shifted(hello, 2)), "</s>Hello world");
  EXPECT_EQ(tok.decode(shifted(hello, 2), /*skip_special=*/true), "Hello world");
  EXPECT_EQ(Tokenizer(opt_like_dir(), {0, std::nullopt}).encode("Hello world"), shifted(hello, 0));
  EXPECT_EQ(Tokenizer(opt_like_dir(), {std::nullopt, false}).encode("Hello world"),
            shifted(hello));
}

TEST(Tokenizer, OptHubConfigFilesAndPrecedence) {
  // The hub's tokenizer_config.json writes tokens as AddedToken objects; special_tokens_map.json wins.
  const std::string config = R"({"add_bos_token": true, "add_prefix_space": false, "errors": "replace",
    "bos_token": {"__type": "AddedToken", "content": "</s>", "lstrip": false, "normalized": true},
    "eos_token": {"__type": "AddedToken", "content": "</s>"}, "unk_token": "<unk>", "pad_token": "<pad>"})";
  const std::string special_map = R"({"bos_token": "<s>", "pad_token": {"content": "<pad>"}})";
  const Tokenizer tok(make_opt_like_dir("tok_hub", config, special_map));
  EXPECT_EQ(tok.special().bos, 0);
  EXPECT_EQ(tok.special().eos, 2);
  EXPECT_EQ(tok.special().unk, 3);
  EXPECT_EQ(tok.special().pad, 1);
  EXPECT_EQ(tok.encode("Hello world"), shifted(expected()["lines"][0], 0));
  // add_prefix_space: HF prepends " ", so "Hello world" becomes " Hello world".
  const Tokenizer prefixed(make_opt_like_dir("tok_prefix", R"({"add_prefix_space": true, "add_bos_token": false})"));
  Ids want = shifted(expected()["lines"][1]);  // " Hello"
  want.push_back(expected()["lines"][0][1].get<int64_t>() + kShift);  // " world"
  EXPECT_EQ(prefixed.encode("Hello world"), want);
}

// ---------------------------------------------------------------- errors: one line naming the culprit

TEST(Tokenizer, ErrorsNameFileAndLine) {
  const std::string vocab = R"({"a":0,"b":1,"ab":2})";
  const std::string nobos = R"({"add_bos_token":false})";
  expect_error([&] { Tokenizer(test::temp_dir("tok_empty")); }, "vocab.json: cannot open");
  expect_error([&] { Tokenizer(make_dir("tok_nobos", vocab, "")); }, "no BOS token");
  const std::string no_merges_dir = make_dir("tok_nomerges2", vocab, "");
  std::filesystem::remove(no_merges_dir + "/merges.txt");
  expect_error([&] { Tokenizer{no_merges_dir}; }, "merges.txt: cannot open");
  expect_error([&] { Tokenizer(make_dir("tok_badjson", "{\"a\": 0,\n\"b\" 1}", "", nobos)); }, "line 2");
  expect_error([&] { Tokenizer(make_dir("tok_badid", R"({"a": "zero"})", "", nobos)); }, "token 'a' has id \"zero\"");
  expect_error([&] { Tokenizer(make_dir("tok_dupid", R"({"a": 0, "b": 0})", "", nobos)); }, "id 0 is given to two tokens");
  expect_error([&] { Tokenizer(make_dir("tok_badmerge", vocab, "#version: 0.2\na b\nab\n", nobos)); },
               "merges.txt:3: expected two symbols");
  expect_error([&] { Tokenizer(make_dir("tok_badmerge3", vocab, "#version: 0.2\na b c\n", nobos)); },
               "merges.txt:2: expected two symbols");
  expect_error([&] { Tokenizer(make_dir("tok_badcfg", vocab, "", R"({"bos_token": "<s>"})")); },
               "tokenizer_config.json: bos_token '<s>' is not in vocab.json");
  expect_error([&] { Tokenizer(make_dir("tok_badcfg2", vocab, "", R"({"add_bos_token": "yes"})")); },
               "tokenizer_config.json: field 'add_bos_token' must be true or false");
  expect_error([&] { Tokenizer(make_dir("tok_badbos", vocab, "", nobos), {7, std::nullopt}); }, "BOS id 7");
  expect_error([&] { gpt2().encode("ok \xC3\x28 bad"); }, "invalid UTF-8 at byte 3");
  expect_error([&] { gpt2().encode("\xED\xA0\x80"); }, "invalid UTF-8 at byte 0");  // surrogate
  expect_error([&] { gpt2().decode({15496, 50257}); }, "token id 50257 is not in vocab.json");
  expect_error([&] { gpt2().decode({-1}); }, "token id -1");
}

// ---------------------------------------------------------------- zo2 tokenize

std::string run_cli(const std::vector<std::string>& args) {
  testing::internal::CaptureStdout();
  try {
    cli::cmd_tokenize(args);
  } catch (...) {
    testing::internal::GetCapturedStdout();
    throw;
  }
  return testing::internal::GetCapturedStdout();
}

TEST(Tokenizer, CliPrintsIdsPerLineAndDecodes) {
  const std::string corpus = test::data_path("tokenizer/corpus.txt");
  std::string want;
  for (const json& ids : expected()["lines"]) {
    const char* sep = "";
    for (const json& id : ids) want.append(sep).append(std::to_string(id.get<int64_t>())), sep = " ";
    want += '\n';
  }
  const std::string got = run_cli({"--tokenizer", gpt2_dir(), "--input", corpus});
  EXPECT_EQ(got, want);

  const std::string dir = test::temp_dir("tok_cli");
  write_text(dir + "/ids.txt", got);
  EXPECT_EQ(run_cli({"--tokenizer", gpt2_dir(), "--input", dir + "/ids.txt", "--decode"}), corpus_text());

  const std::string opt = opt_like_dir();
  write_text(dir + "/hello.txt", "Hello world\n");
  const Ids h = shifted(expected()["lines"][0]);
  const std::string body = std::to_string(h[0]) + " " + std::to_string(h[1]) + "\n";
  EXPECT_EQ(run_cli({"--tokenizer", opt, "--input", dir + "/hello.txt"}), "2 " + body);
  EXPECT_EQ(run_cli({"--tokenizer", opt, "--input", dir + "/hello.txt", "--bos-id", "0"}), "0 " + body);
  EXPECT_EQ(run_cli({"--tokenizer", opt, "--input", dir + "/hello.txt", "--no-bos"}), body);

  write_text(dir + "/bad_ids.txt", "15496 995\n15496 x9\n");
  expect_error([&] { run_cli({"--tokenizer", gpt2_dir(), "--input", dir + "/bad_ids.txt", "--decode"}); },
               "bad_ids.txt:2: 'x9' is not a token id");
  write_text(dir + "/bad_utf8.txt", "fine\nstill fine\nnot \xFF fine\n");
  expect_error([&] { run_cli({"--tokenizer", gpt2_dir(), "--input", dir + "/bad_utf8.txt"}); },
               "bad_utf8.txt:3: invalid UTF-8 at byte 4");
}

}  // namespace
}  // namespace zo2
