// The parts of Python's str that MeZO's templates and its SQuAD metric rely on, for UTF-8 strings, so
// that prompts and normalised answers come out byte for byte as in Python. Whitespace is str.isspace()'s
// set. Case mapping is Unicode's simple one-to-one mapping of upper- and lower-case letters (PCRE2's
// tables), which differs from Python's lower()/upper() only for special-cased letters (U+0130 'İ',
// final sigma, 'ß' upper-cased, title-case digraphs). Ill-formed UTF-8 throws zo2::Error.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace zo2::py {

bool is_space(char32_t c);  // str.isspace() of one character

std::string strip(std::string_view s);          // s.strip()
std::string lstrip(std::string_view s);         // s.lstrip()
std::string rstrip(std::string_view s);         // s.rstrip()
std::string strip_spaces(std::string_view s);   // s.strip(' ')
std::string rstrip_spaces(std::string_view s);  // s.rstrip(' ')
std::vector<std::string> split(std::string_view s);  // s.split()

std::string lower(std::string_view s);
std::string upper(std::string_view s);
// s[0].upper() + s[1:] (the first character, not byte).
std::string upper_first(std::string_view s);

// re.sub(pattern, repl, s) where `pattern` means the same to PCRE2 (UTF, Unicode \w and \b) as to
// Python's re, and `repl` is literal text.
std::string re_sub(const std::string& pattern, const std::string& repl, std::string_view s);

}  // namespace zo2::py
