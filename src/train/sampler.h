// Deterministic data order, a pure function of (seed, position): epoch e is a permutation of the
// examples drawn from (seed, e), and the stream of epochs is cut into batches. Resuming at step s
// needs nothing but s.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

namespace zo2 {

class Sampler {
 public:
  Sampler(int64_t size, uint64_t seed);
  // Example indices at stream positions [begin, begin + count).
  std::vector<int64_t> take(int64_t begin, int64_t count);

 private:
  const std::vector<int64_t>& epoch(int64_t e);
  int64_t size_;
  uint64_t seed_;
  std::map<int64_t, std::vector<int64_t>> cache_;  // a few recent epochs
};

// Positions of rank shard `shard` (of `shards`) for micro-batch `micro` of step `step`:
// each step consumes shards * micro_batches * batch_size positions.
int64_t stream_position(int64_t step, int64_t micro, int64_t shard, int64_t shards, int64_t micro_batches,
                        int64_t batch_size);

}  // namespace zo2
