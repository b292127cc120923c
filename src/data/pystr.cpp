#include "data/pystr.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <map>
#include <memory>
#include <mutex>

#include "common/error.h"

namespace zo2::py {

namespace {

bool is_cont(unsigned char b) { return (b & 0xC0) == 0x80; }

// The code point starting at s[i] and its length (the caller keeps i inside s).
char32_t decode_at(std::string_view s, size_t i, size_t* len) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t n = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 0;
  ZO2_REQUIRE(n > 0 && i + n <= s.size(), "ill-formed UTF-8 at byte ", i);
  char32_t c = n == 1 ? b : b & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    ZO2_REQUIRE(is_cont(static_cast<unsigned char>(s[i + k])), "ill-formed UTF-8 at byte ", i);
    c = c << 6 | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  }
  *len = n;
  return c;
}

// Bytes of leading / trailing whitespace.
size_t lead_ws(std::string_view s) {
  size_t i = 0, n = 0;
  while (i < s.size() && is_space(decode_at(s, i, &n))) i += n;
  return i;
}
size_t trail_ws(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1, n = 0;
    while (start > 0 && is_cont(static_cast<unsigned char>(s[start]))) --start;
    if (!is_space(decode_at(s, start, &n))) break;
    end = start;
  }
  return s.size() - end;
}

struct Pattern {
  pcre2_code* code = nullptr;
  explicit Pattern(const std::string& p) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(), PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw_error("PCRE2 rejects pattern '", p, "' at offset ", off, ": ", reinterpret_cast<const char*>(msg));
    }
  }
  ~Pattern() { pcre2_code_free(code); }
  Pattern(const Pattern&) = delete;
  Pattern& operator=(const Pattern&) = delete;
};

const Pattern& compiled(const std::string& p) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Pattern>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[p];
  if (!slot) slot = std::make_unique<Pattern>(p);
  return *slot;
}

// pcre2_substitute over all matches; `extended` reads \L, \U and $0 in `repl`.
std::string substitute(const Pattern& pat, const std::string& repl, std::string_view s, bool extended) {
  uint32_t opts = PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH;
  if (extended) opts |= PCRE2_SUBSTITUTE_EXTENDED;
  std::string out(s.size() + 16, '\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    PCRE2_SIZE len = out.size();
    const int rc = pcre2_substitute(pat.code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, opts, nullptr,
                                    nullptr, reinterpret_cast<PCRE2_SPTR>(repl.data()), repl.size(),
                                    reinterpret_cast<PCRE2_UCHAR*>(out.data()), &len);
    if (rc >= 0) {
      out.resize(len);
      return out;
    }
    if (rc != PCRE2_ERROR_NOMEMORY) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw_error("text substitution failed: ", reinterpret_cast<const char*>(msg));
    }
    out.assign(len, '\0');  // OVERFLOW_LENGTH: len is the size needed
  }
  throw_error("text substitution failed: output kept growing");
}

}  // namespace

bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string lstrip(std::string_view s) { return std::string(s.substr(lead_ws(s))); }
std::string rstrip(std::string_view s) { return std::string(s.substr(0, s.size() - trail_ws(s))); }
std::string strip(std::string_view s) { return rstrip(lstrip(s)); }

std::string rstrip_spaces(std::string_view s) {
  const size_t end = s.find_last_not_of(' ');
  return end == std::string_view::npos ? std::string() : std::string(s.substr(0, end + 1));
}
std::string strip_spaces(std::string_view s) {
  const size_t begin = s.find_first_not_of(' ');
  return begin == std::string_view::npos ? std::string() : rstrip_spaces(s.substr(begin));
}

std::vector<std::string> split(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0, n = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(decode_at(s, i, &n))) i += n;
    const size_t start = i;
    while (i < s.size() && !is_space(decode_at(s, i, &n))) i += n;
    if (i > start) out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

std::string lower(std::string_view s) { return substitute(compiled("(?s).+"), "\\L$0", s, true); }
std::string upper(std::string_view s) { return substitute(compiled("(?s).+"), "\\U$0", s, true); }

std::string upper_first(std::string_view s) {
  if (s.empty()) return std::string();
  size_t n = 0;
  decode_at(s, 0, &n);
  return upper(s.substr(0, n)) + std::string(s.substr(n));
}

std::string re_sub(const std::string& pattern, const std::string& repl, std::string_view s) {
  std::string literal;  // '$' is the only special character of a plain replacement
  for (char c : repl) literal += c == '$' ? std::string("$$") : std::string(1, c);
  return substitute(compiled(pattern), literal, s, false);
}

}  // namespace zo2::py
