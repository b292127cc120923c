// Errors that reach the user: one line that names the file, tensor, field or line at fault.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace zo2 {

// Bad input or a failed run-time condition. what() is the one line `zo2` prints before exiting.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <class T, class... R>
void append(std::ostringstream& os, const T& v, const R&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

// Builds a message from pieces: throw_error("file ", path, ": tensor ", name, " missing").
template <class... A>
[[noreturn]] void throw_error(const A&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  throw Error(os.str());
}

}  // namespace zo2

// Input validation: ZO2_REQUIRE(n > 0, "file ", path, ": empty");
#define ZO2_REQUIRE(cond, ...)            \
  do {                                    \
    if (!(cond)) ::zo2::throw_error(__VA_ARGS__); \
  } while (0)
