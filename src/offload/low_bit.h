// Low-bit transfer of streamed blocks for read-only passes (evaluation, generation; docs/offload.md,
// "Low-bit transfer"): the block's six weight matrices travel as int8 with one fp32 scale per output row
// (symmetric, round to nearest: scale = max |w| / 127), the biases and LayerNorms as stored. The 16-bit
// (or fp32) master is untouched: training passes, checkpoints and checksums always use it.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>

#include "offload/block_layout.h"

namespace zo2 {

struct LowBitLayout {
  std::array<bool, BlockWeights::kSlots> quantized{};  // the 2-D slots (weight matrices)
  std::array<int64_t, BlockWeights::kSlots> offset{};  // bytes: int8 values, or the stored tensor
  std::array<int64_t, BlockWeights::kSlots> scale_offset{};  // bytes: fp32 row scales (quantized slots)
  int64_t bytes = 0;

  static LowBitLayout make(const BlockLayout& block);
};

// Writes the low-bit form of `w` (any device) into `out` (uint8, layout.bytes, same device).
void quantize_block(const BlockLayout& block, const LowBitLayout& layout, const BlockWeights& w, const at::Tensor& out);
// Expands `in` (uint8, layout.bytes) into `w` (the block's tensors, same device), in w's dtype.
void dequantize_block(const BlockLayout& block, const LowBitLayout& layout, const at::Tensor& in, BlockWeights& w);

}  // namespace zo2
