#include "offload/block_layout.h"

#include "common/error.h"

namespace zo2 {

BlockLayout BlockLayout::make(const OptConfig& cfg, at::ScalarType dtype) {
  BlockLayout l;
  l.dtype = dtype;
  const int64_t esize = static_cast<int64_t>(c10::elementSize(dtype));
  int64_t at_byte = 0;
  for (const ParamInfo& p : block_param_table(cfg, 0)) {
    int64_t n = 1;
    for (int64_t d : p.shape) n *= d;
    l.shape[p.slot] = p.shape;
    l.offset[p.slot] = at_byte;
    at_byte = (at_byte + n * esize + 255) / 256 * 256;
  }
  l.bytes = at_byte;
  return l;
}

BlockWeights BlockLayout::view(const at::Tensor& buffer) const {
  TORCH_CHECK(buffer.scalar_type() == at::kByte && buffer.is_contiguous() && buffer.numel() >= bytes,
              "block buffer is too small or not a contiguous byte tensor");
  BlockWeights w;
  const int64_t esize = static_cast<int64_t>(c10::elementSize(dtype));
  for (int s = 0; s < BlockWeights::kSlots; ++s) {
    int64_t n = 1;
    for (int64_t d : shape[s]) n *= d;
    w.slot(s) = buffer.narrow(0, offset[s], n * esize).view(dtype).view(shape[s]);
  }
  return w;
}

}  // namespace zo2
