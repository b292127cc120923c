// This process's host memory as the kernel accounts it (Linux /proc), to show that the ranks of a node
// share one host copy of the streamed blocks: a shared segment counts fully in every mapper's
// rss_shmem but once in the node's sum of pss_shmem (each page split among the processes mapping it).
#pragma once

#include <cstdint>

namespace zo2 {

struct HostMemory {
  int64_t rss_anon = 0;   // private anonymous memory (a private copy of the blocks lands here)
  int64_t rss_shmem = 0;  // shared memory this process has touched
  int64_t pss_anon = 0;
  int64_t pss_shmem = 0;  // its proportional share
};

// Bytes, from /proc/self/status and /proc/self/smaps_rollup; 0 where the kernel does not say.
HostMemory host_memory();

}  // namespace zo2
