// Where the 16 tensors of a decoder block sit inside one contiguous buffer, so a block moves between
// host and GPU as a single copy.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>

#include "model/opt_config.h"
#include "model/opt_weights.h"

namespace zo2 {

struct BlockLayout {
  at::ScalarType dtype = at::kHalf;
  std::array<std::vector<int64_t>, BlockWeights::kSlots> shape;
  std::array<int64_t, BlockWeights::kSlots> offset{};  // bytes, each 256-byte aligned
  int64_t bytes = 0;                                   // whole buffer

  static BlockLayout make(const OptConfig& cfg, at::ScalarType dtype);
  // BlockWeights whose tensors view `buffer` (uint8, at least `bytes` long, any device).
  BlockWeights view(const at::Tensor& buffer) const;
};

}  // namespace zo2
