// The weights of a model as low-bit reads see them (offload/low_bit.h): every decoder block except
// `keep` after an int8 round trip. Shared by the offload and parity tests.
#pragma once

#include "offload/block_layout.h"
#include "offload/low_bit.h"

namespace zo2::test {

// quantize_block's own properties are checked in LowBit.QuantizesEachRowToWithinHalfAStep.
inline OptWeights low_bit_copy(const OptConfig& c, const OptWeights& w, int64_t keep = -1) {
  OptWeights out = w;
  const BlockLayout bl = BlockLayout::make(c, w.blocks[0].k_w.scalar_type());
  const LowBitLayout ll = LowBitLayout::make(bl);
  for (int64_t l = 0; l < c.layers; ++l) {
    if (l == keep) continue;
    at::Tensor buf = at::empty({ll.bytes}, at::TensorOptions().dtype(at::kByte));
    quantize_block(bl, ll, w.blocks[l], buf);
    for (int s = 0; s < BlockWeights::kSlots; ++s) out.blocks[l].slot(s) = w.blocks[l].slot(s).clone();
    dequantize_block(bl, ll, buf, out.blocks[l]);
  }
  return out;
}

}  // namespace zo2::test
