#include "common/check.h"

#include <unistd.h>

#include <atomic>
#include <sstream>

#include "common/error.h"

namespace zo2 {
namespace {
std::atomic<int> g_rank{-1};
}

void set_process_rank(int rank) { g_rank = rank; }

std::string rank_at_host() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '?';
  std::ostringstream os;
  if (g_rank >= 0)
    os << "rank " << g_rank << "@" << host;
  else
    os << "host " << host;
  return os.str();
}

void report_check_failure(const char* lib, long code, const char* text, const char* expr,
                          const char* file, int line) {
  throw_error(lib, " error ", code, " (", text ? text : "?", ") in `", expr, "` at ", file, ":", line,
              " on ", rank_at_host());
}

}  // namespace zo2
