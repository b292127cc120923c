#include "common/host_memory.h"

#include <fstream>
#include <string>

namespace zo2 {
namespace {

// "Name:   123 kB" lines of a /proc file: the value of each wanted name, in bytes.
void read_kb(const char* path, std::initializer_list<std::pair<const char*, int64_t*>> wanted) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    for (auto [name, out] : wanted) {
      const std::string key = std::string(name) + ":";
      if (line.compare(0, key.size(), key) == 0) *out = std::stoll(line.substr(key.size())) * 1024;
    }
}

}  // namespace

HostMemory host_memory() {
  HostMemory m;
  read_kb("/proc/self/status", {{"RssAnon", &m.rss_anon}, {"RssShmem", &m.rss_shmem}});
  read_kb("/proc/self/smaps_rollup", {{"Pss_Anon", &m.pss_anon}, {"Pss_Shmem", &m.pss_shmem}});
  return m;
}

}  // namespace zo2
