#include "text/tokenizer.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "common/error.h"

namespace zo2 {

namespace {

using nlohmann::json;

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  ZO2_REQUIRE(in.good(), path, ": cannot open (", what, ")");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

json parse_json(const std::string& path, const char* what) {
  try {
    return json::parse(read_file(path, what));
  } catch (const json::parse_error& e) {
    throw_error(path, ": invalid JSON: ", e.what());
  }
}

std::unordered_map<std::string, int64_t> read_vocab(const std::string& path) {
  const json j = parse_json(path, "a tokenizer directory needs vocab.json and merges.txt");
  ZO2_REQUIRE(j.is_object(), path, ": top level must be a JSON object of token -> id");
  std::unordered_map<std::string, int64_t> vocab;
  vocab.reserve(j.size());
  for (const auto& [token, id] : j.items()) {
    ZO2_REQUIRE(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < (int64_t{1} << 31), path,
                ": token '", token, "' has id ", id.dump(), ", not an integer in [0, 2^31)");
    vocab.emplace(token, id.get<int64_t>());
  }
  return vocab;
}

// merges.txt: "#version: ..." then one "left right" pair per line; the rank is the line order.
std::vector<std::pair<std::string, std::string>> read_merges(const std::string& path) {
  const std::string text = read_file(path, "a tokenizer directory needs vocab.json and merges.txt");
  std::vector<std::pair<std::string, std::string>> merges;
  std::istringstream in(text);
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (n == 1 && line.rfind("#version", 0) == 0) continue;
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // HF gives blank lines a rank too
    ZO2_REQUIRE(bpe::find_invalid_utf8(line) == std::string_view::npos, path, ":", n, ": not valid UTF-8");
    std::istringstream fields(line);
    std::string left, right, extra;
    fields >> left >> right >> extra;
    ZO2_REQUIRE(!right.empty() && extra.empty(), path, ":", n,
                ": expected two symbols separated by a space, got '", line, "'");
    merges.emplace_back(std::move(left), std::move(right));
  }
  return merges;
}

// One special token as the config files name it: "text", {"content": "text", ...} or null (none).
struct TokenChoice {
  std::optional<std::string> text;
  std::string source;  // file that set it; empty for zo2's OPT default
};

struct TokenConfig {
  TokenChoice bos{"</s>", ""}, eos{"</s>", ""}, unk{"</s>", ""}, pad{"<pad>", ""};
  bool add_bos = true;
  bool add_prefix_space = false;

  // Later files override earlier ones, as HF lets special_tokens_map.json override tokenizer_config.json.
  void apply(const std::string& path) {
    if (!std::filesystem::exists(path)) return;
    const json j = parse_json(path, "tokenizer config");
    ZO2_REQUIRE(j.is_object(), path, ": top level must be a JSON object");
    const std::pair<const char*, TokenChoice*> tokens[] = {
        {"bos_token", &bos}, {"eos_token", &eos}, {"unk_token", &unk}, {"pad_token", &pad}};
    for (auto [key, choice] : tokens) {
      if (!j.contains(key)) continue;
      const json& v = j[key];
      if (v.is_null()) *choice = {std::nullopt, path};
      else if (v.is_string()) *choice = {v.get<std::string>(), path};
      else if (v.is_object() && v.contains("content") && v["content"].is_string())
        *choice = {v["content"].get<std::string>(), path};
      else
        throw_error(path, ": field '", key, "' must be a string, an object with \"content\", or null; got ",
                    v.dump());
    }
    const std::pair<const char*, bool*> flags[] = {{"add_bos_token", &add_bos}, {"add_prefix_space", &add_prefix_space}};
    for (auto [key, flag] : flags) {
      if (!j.contains(key) || j[key].is_null()) continue;
      ZO2_REQUIRE(j[key].is_boolean(), path, ": field '", key, "' must be true or false, got ", j[key].dump());
      *flag = j[key].get<bool>();
    }
  }
};

int64_t resolve(const TokenChoice& c, const char* key, const std::unordered_map<std::string, int64_t>& vocab) {
  if (!c.text) return -1;
  auto it = vocab.find(*c.text);
  if (it != vocab.end()) return it->second;
  ZO2_REQUIRE(c.source.empty(), c.source, ": ", key, " '", *c.text, "' is not in vocab.json");
  return -1;  // an OPT default that this vocabulary lacks
}

}  // namespace

Tokenizer::Tokenizer(const std::string& dir, const TokenizerOptions& opt)
    : vocab_(read_vocab(dir + "/vocab.json")),
      splitter_(std::make_unique<bpe::Splitter>()),
      merger_(std::make_unique<bpe::Merger>(read_merges(dir + "/merges.txt"), vocab_)) {
  for (const auto& [token, id] : vocab_) {
    if (id >= vocab_size()) id_bytes_.resize(id + 1), id_known_.resize(id + 1, false);
    ZO2_REQUIRE(!id_known_[id], dir, "/vocab.json: id ", id, " is given to two tokens, one of them '", token, "'");
    id_bytes_[id] = bpe::symbol_to_bytes(token);
    id_known_[id] = true;
  }

  TokenConfig cfg;
  cfg.apply(dir + "/tokenizer_config.json");
  cfg.apply(dir + "/special_tokens_map.json");
  special_.bos = resolve(cfg.bos, "bos_token", vocab_);
  special_.eos = resolve(cfg.eos, "eos_token", vocab_);
  special_.unk = resolve(cfg.unk, "unk_token", vocab_);
  special_.pad = resolve(cfg.pad, "pad_token", vocab_);
  special_.add_bos = opt.add_bos.value_or(cfg.add_bos);
  add_prefix_space_ = cfg.add_prefix_space;
  if (opt.bos_id) {
    ZO2_REQUIRE(*opt.bos_id >= 0 && *opt.bos_id < vocab_size() && id_known_[*opt.bos_id], "BOS id ", *opt.bos_id,
                " is not in ", dir, "/vocab.json");
    special_.bos = *opt.bos_id;
  }
  ZO2_REQUIRE(!special_.add_bos || special_.bos >= 0, dir,
              ": no BOS token (vocab.json has no '</s>' and no tokenizer_config.json names one); "
              "turn add_bos off (zo2 tokenize --no-bos) or give a BOS id");
}

std::optional<int64_t> Tokenizer::token_id(const std::string& token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string_view> Tokenizer::split(std::string_view text, std::string& buffer) const {
  const size_t bad = bpe::find_invalid_utf8(text);
  ZO2_REQUIRE(bad == std::string_view::npos, "invalid UTF-8 at byte ", bad);
  if (!add_prefix_space_) return splitter_->split(text);
  buffer = " ";
  buffer += text;
  return splitter_->split(buffer);
}

std::vector<int64_t> Tokenizer::encode(std::string_view text) const {
  std::string buffer;
  std::vector<int64_t> ids;
  if (special_.add_bos) ids.push_back(special_.bos);
  for (std::string_view piece : split(text, buffer)) merger_->encode_piece(piece, special_.unk, ids);
  return ids;
}

std::vector<std::string> Tokenizer::pre_tokenize(std::string_view text) const {
  std::string buffer;
  std::vector<std::string> pieces;
  for (std::string_view piece : split(text, buffer)) pieces.emplace_back(piece);
  return pieces;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string bytes;
  for (int64_t id : ids) {
    ZO2_REQUIRE(id >= 0 && id < vocab_size() && id_known_[id], "token id ", id, " is not in vocab.json");
    if (skip_special && (id == special_.bos || id == special_.eos || id == special_.unk || id == special_.pad))
      continue;
    bytes += id_bytes_[id];
  }
  return bpe::replace_invalid_utf8(bytes);
}

}  // namespace zo2
