// GPT-2 byte-level BPE: UTF-8 checks, the pre-tokenisation regex, the byte <-> character map and
// merging by rank. File formats and special tokens live in text/tokenizer.h.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace zo2::bpe {

// Byte offset of the first ill-formed UTF-8 sequence in `s` (overlong forms, surrogates and code points
// above U+10FFFF are ill-formed), or std::string_view::npos.
size_t find_invalid_utf8(std::string_view s);
// `s` with every maximal ill-formed subpart replaced by U+FFFD, as Python's decode(errors="replace")
// and the WHATWG TextDecoder do.
std::string replace_invalid_utf8(std::string_view s);

// GPT-2's bytes_to_unicode(): the code point that stands for byte b in vocab.json and merges.txt.
char32_t byte_to_char(uint8_t b);
// The bytes a vocab.json symbol stands for (the inverse map). A character outside the map (none in
// GPT-2's or OPT's vocabulary) stands for its own UTF-8 bytes, where HF's decode would raise KeyError.
std::string symbol_to_bytes(std::string_view symbol);

// The pre-tokeniser, GPT-2's pattern compiled with PCRE2 (UTF, UCP, JIT where available):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with \s spelled out as Unicode White_Space, which is what Python's `regex` (HF's engine) matches;
// PCRE2 10.42's own \s also takes U+180E. Letters and digits come from PCRE2's Unicode tables (14.0 in
// 10.42), so characters assigned later count as neither. Thread-safe after construction.
class Splitter {
 public:
  Splitter();
  ~Splitter();
  Splitter(const Splitter&) = delete;
  Splitter& operator=(const Splitter&) = delete;
  // The pieces of `text`, which must be valid UTF-8 (checked by the caller), in order; they tile `text`.
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Merge table and vocabulary over interned symbols (the vocab.json strings). Thread-safe: the only
// mutable state is the per-piece cache, behind a mutex.
class Merger {
 public:
  // `merges` in rank order (a later duplicate wins, like HF's dict); `vocab` maps symbol -> id.
  Merger(const std::vector<std::pair<std::string, std::string>>& merges,
         const std::unordered_map<std::string, int64_t>& vocab);
  // Appends the ids of one pre-tokenised piece (raw UTF-8 bytes). A final symbol that is not in the
  // vocabulary becomes `unk_id`, or throws naming the symbol when unk_id < 0.
  void encode_piece(std::string_view piece, int64_t unk_id, std::vector<int64_t>& out) const;

 private:
  int32_t intern(const std::string& s);
  std::vector<int32_t> merge(std::string_view piece) const;  // symbol ids after all merges

  std::unordered_map<std::string, int32_t> symbol_ids_;
  std::vector<std::string> symbols_;
  std::vector<int64_t> symbol_vocab_;  // vocab id per symbol, -1 when absent
  int32_t byte_symbol_[256];
  struct Merge {
    int32_t rank, result;
  };
  std::unordered_map<uint64_t, Merge> merges_;  // (left << 32 | right) -> rank and merged symbol

  static constexpr size_t kCacheLimit = 1 << 17;    // pieces; cleared when full to bound memory
  static constexpr size_t kCacheMaxPiece = 256;     // bytes; longer pieces are rare and not cached
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace zo2::bpe
