// A Hugging Face GPT-2-style tokenizer directory (vocab.json + merges.txt, optionally
// tokenizer_config.json and special_tokens_map.json) with OPT's conventions: BOS prepended, no EOS.
// Follows the slow GPT2Tokenizer, which OPT (and MeZO, use_fast=False) use; docs/tokenizer.md lists
// where it deviates.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/bpe.h"

namespace zo2 {

struct TokenizerOptions {
  std::optional<int64_t> bos_id;  // replaces the configured BOS; MeZO/ZO2 use 0 ("<s>") for OPT
  std::optional<bool> add_bos;    // replaces add_bos_token
};

// Special token ids; -1 where the tokenizer has none.
struct SpecialTokens {
  int64_t bos = -1, eos = -1, unk = -1, pad = -1;
  bool add_bos = true;
};

class Tokenizer {
 public:
  // Reads `dir`. Special tokens: OPT's defaults (bos = eos = unk = "</s>", pad = "<pad>",
  // add_bos_token = true), replaced by tokenizer_config.json, then special_tokens_map.json, then `opt`.
  // Throws zo2::Error naming the file and line or token at fault.
  explicit Tokenizer(const std::string& dir, const TokenizerOptions& opt = {});

  // Ids of `text`, BOS first when special().add_bos. Special tokens typed in the text are encoded as
  // text (recent transformers may split them out instead: docs/tokenizer.md). Throws on ill-formed
  // UTF-8, naming the byte offset.
  std::vector<int64_t> encode(std::string_view text) const;
  // Text of `ids` (special tokens included unless skip_special); bytes that do not form UTF-8 become
  // U+FFFD as in HF's errors="replace". Throws for an id that is not in vocab.json.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const;
  // The pre-tokenised pieces of `text` (valid UTF-8), for tests and inspection.
  std::vector<std::string> pre_tokenize(std::string_view text) const;

  const SpecialTokens& special() const { return special_; }
  int64_t vocab_size() const { return static_cast<int64_t>(id_bytes_.size()); }  // largest id + 1
  std::optional<int64_t> token_id(const std::string& token) const;               // vocab.json lookup

 private:
  // Checks the UTF-8 and splits; with add_prefix_space the pieces point into `buffer`.
  std::vector<std::string_view> split(std::string_view text, std::string& buffer) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> id_bytes_;  // bytes each id decodes to
  std::vector<bool> id_known_;
  SpecialTokens special_;
  bool add_prefix_space_ = false;  // tokenizer_config.json; OPT and GPT-2 have false
  std::unique_ptr<bpe::Splitter> splitter_;
  std::unique_ptr<bpe::Merger> merger_;
};

}  // namespace zo2
