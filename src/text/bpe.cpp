#include "text/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <climits>

#include "common/error.h"

namespace zo2::bpe {

// ---------------------------------------------------------------- UTF-8

namespace {

// One step through UTF-8 (Unicode Table 3-7). ok: a well-formed character of `len` bytes, code point
// `cp`. Not ok: `len` is the maximal ill-formed subpart, which gets one U+FFFD.
struct Utf8Step {
  bool ok;
  size_t len;
  char32_t cp;
};

Utf8Step utf8_step(std::string_view s, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t b0 = byte(pos);
  if (b0 < 0x80) return {true, 1, b0};
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // range of the second byte; later ones are always 80..BF
  char32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return {false, 1, 0};
  }
  for (size_t k = 1; k <= need; ++k) {
    if (pos + k >= s.size()) return {false, k, 0};
    const uint8_t b = byte(pos + k);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return {false, k, 0};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {true, need + 1, cp};
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

}  // namespace

size_t find_invalid_utf8(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    const Utf8Step st = utf8_step(s, pos);
    if (!st.ok) return pos;
    pos += st.len;
  }
  return std::string_view::npos;
}

std::string replace_invalid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    const Utf8Step st = utf8_step(s, pos);
    if (st.ok) out.append(s.substr(pos, st.len));
    else out += "\xEF\xBF\xBD";  // U+FFFD
    pos += st.len;
  }
  return out;
}

// ---------------------------------------------------------------- byte <-> character map

namespace {

struct ByteMap {
  char32_t to_char[256];
  int16_t to_byte[0x144];  // every mapped code point is below 256 + 68

  ByteMap() {
    for (int16_t& b : to_byte) b = -1;
    // Printable bytes stand for themselves; the other 68 (0-32, 127-160, 173) take U+0100.. in order.
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_char[b] = printable ? static_cast<char32_t>(b) : next++;
      to_byte[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

}  // namespace

char32_t byte_to_char(uint8_t b) { return byte_map().to_char[b]; }

std::string symbol_to_bytes(std::string_view symbol) {
  const ByteMap& m = byte_map();
  std::string out;
  for (size_t pos = 0; pos < symbol.size();) {
    const Utf8Step st = utf8_step(symbol, pos);
    if (st.ok && st.cp < 0x144 && m.to_byte[st.cp] >= 0) out += static_cast<char>(m.to_byte[st.cp]);
    else out.append(symbol.substr(pos, st.len));
    pos += st.len;
  }
  return out;
}

// ---------------------------------------------------------------- pre-tokeniser

struct Splitter::Impl {
  pcre2_code* code = nullptr;
};

Splitter::Splitter() : impl_(std::make_unique<Impl>()) {
  // Unicode White_Space, i.e. Python `regex`'s \s (PCRE2's \s adds U+180E).
  const std::string ws = R"(\t-\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
  const std::string pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^)" + ws + R"(\p{L}\p{N}]+|[)" + ws +
                              "]+(?![^" + ws + "])|[" + ws + "]+";
  int err = 0;
  PCRE2_SIZE offset = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                              &err, &offset, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw_error("PCRE2 rejects the GPT-2 pattern at offset ", offset, ": ", reinterpret_cast<const char*>(msg));
  }
  pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);  // optional: pcre2_match falls back to the interpreter
}

Splitter::~Splitter() { pcre2_code_free(impl_->code); }

std::vector<std::string_view> Splitter::split(std::string_view text) const {
  std::vector<std::string_view> pieces;
  std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(
      pcre2_match_data_create_from_pattern(impl_->code, nullptr), pcre2_match_data_free);
  ZO2_REQUIRE(md, "PCRE2: out of memory");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  for (size_t start = 0; start < text.size();) {
    // The caller validated the UTF-8 once; checking it again per match would be quadratic.
    const int rc = pcre2_match(impl_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;  // unreachable: every character matches some alternative
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw_error("PCRE2 match failed at byte ", start, ": ", reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    pieces.push_back(text.substr(ov[0], ov[1] - ov[0]));
    start = ov[1];
  }
  return pieces;
}

// ---------------------------------------------------------------- merges

Merger::Merger(const std::vector<std::pair<std::string, std::string>>& merges,
               const std::unordered_map<std::string, int64_t>& vocab) {
  for (int b = 0; b < 256; ++b) {
    std::string s;
    append_utf8(s, byte_to_char(static_cast<uint8_t>(b)));
    byte_symbol_[b] = intern(s);
  }
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    const uint64_t key = static_cast<uint64_t>(intern(a)) << 32 | static_cast<uint32_t>(intern(b));
    merges_[key] = Merge{static_cast<int32_t>(r), intern(a + b)};
  }
  symbol_vocab_.reserve(symbols_.size());
  for (const std::string& s : symbols_) {
    auto it = vocab.find(s);
    symbol_vocab_.push_back(it == vocab.end() ? -1 : it->second);
  }
}

int32_t Merger::intern(const std::string& s) {
  auto [it, fresh] = symbol_ids_.emplace(s, static_cast<int32_t>(symbols_.size()));
  if (fresh) symbols_.push_back(s);
  return it->second;
}

std::vector<int32_t> Merger::merge(std::string_view piece) const {
  std::vector<int32_t> word;
  word.reserve(piece.size());
  for (char c : piece) word.push_back(byte_symbol_[static_cast<uint8_t>(c)]);
  std::vector<int32_t> next;
  // HF's bpe(): take the adjacent pair of lowest rank, merge all its occurrences left to right, repeat.
  while (word.size() > 1) {
    int32_t best_rank = INT32_MAX, left = -1, right = -1, result = -1;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = merges_.find(static_cast<uint64_t>(word[i]) << 32 | static_cast<uint32_t>(word[i + 1]));
      if (it != merges_.end() && it->second.rank < best_rank) {
        best_rank = it->second.rank, left = word[i], right = word[i + 1], result = it->second.result;
      }
    }
    if (result < 0) break;
    next.clear();
    for (size_t i = 0; i < word.size(); ++i) {
      if (i + 1 < word.size() && word[i] == left && word[i + 1] == right) {
        next.push_back(result);
        ++i;
      } else {
        next.push_back(word[i]);
      }
    }
    word.swap(next);
  }
  return word;
}

void Merger::encode_piece(std::string_view piece, int64_t unk_id, std::vector<int64_t>& out) const {
  std::vector<int32_t> word;
  const bool cacheable = piece.size() <= kCacheMaxPiece;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(std::string(piece));
    if (it != cache_.end()) word = it->second;
  }
  if (word.empty()) {
    word = merge(piece);
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      if (cache_.size() >= kCacheLimit) cache_.clear();
      cache_.emplace(std::string(piece), word);
    }
  }
  for (int32_t s : word) {
    const int64_t id = symbol_vocab_[s];
    if (id >= 0) out.push_back(id);
    else if (unk_id >= 0) out.push_back(unk_id);
    else throw_error("symbol '", symbols_[s], "' is not in vocab.json and there is no unk token");
  }
}

}  // namespace zo2::bpe
