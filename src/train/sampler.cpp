#include "train/sampler.h"

#include <ATen/ATen.h>

#include "common/error.h"
#include "kernels/zo_kernels.h"

namespace zo2 {

Sampler::Sampler(int64_t size, uint64_t seed) : size_(size), seed_(seed) {
  ZO2_REQUIRE(size > 0, "the dataset is empty");
}

const std::vector<int64_t>& Sampler::epoch(int64_t e) {
  auto it = cache_.find(e);
  if (it != cache_.end()) return it->second;
  if (cache_.size() > 4) cache_.erase(cache_.begin());
  at::Generator g = at::detail::createCPUGenerator(kernels::splitmix64(seed_ ^ kernels::splitmix64(e + 1)));
  at::Tensor p = at::randperm(size_, g, at::TensorOptions().dtype(at::kLong));
  return cache_[e] = std::vector<int64_t>(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + size_);
}

std::vector<int64_t> Sampler::take(int64_t begin, int64_t count) {
  std::vector<int64_t> out;
  for (int64_t p = begin; p < begin + count; ++p) out.push_back(epoch(p / size_)[p % size_]);
  return out;
}

int64_t stream_position(int64_t step, int64_t micro, int64_t shard, int64_t shards, int64_t micro_batches,
                        int64_t batch_size) {
  return ((step * micro_batches + micro) * shards + shard) * batch_size;
}

}  // namespace zo2
