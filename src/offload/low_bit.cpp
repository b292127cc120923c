#include "offload/low_bit.h"

#include <algorithm>

#include "common/error.h"

namespace zo2 {

namespace {
int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}
int64_t align(int64_t b) { return (b + 255) / 256 * 256; }
// Rows per chunk of at most 64 MiB of fp32 temporaries (a whole OPT-175B fc1 would need 2.4 GB).
int64_t chunk_rows(int64_t cols) { return std::max<int64_t>(1, (int64_t(64) << 20) / (4 * cols)); }

at::Tensor part(const at::Tensor& buf, int64_t offset, int64_t bytes, at::ScalarType dtype,
                const std::vector<int64_t>& shape) {
  return buf.narrow(0, offset, bytes).view(dtype).view(shape);
}
}  // namespace

LowBitLayout LowBitLayout::make(const BlockLayout& block) {
  LowBitLayout l;
  const int64_t esize = static_cast<int64_t>(c10::elementSize(block.dtype));
  int64_t at = 0;
  for (int s = 0; s < BlockWeights::kSlots; ++s) {
    const std::vector<int64_t>& shape = block.shape[s];
    l.quantized[s] = shape.size() == 2;
    l.offset[s] = at;
    if (l.quantized[s]) {
      at = align(at + numel(shape));
      l.scale_offset[s] = at;
      at = align(at + shape[0] * 4);
    } else {
      at = align(at + numel(shape) * esize);
    }
  }
  l.bytes = at;
  return l;
}

void quantize_block(const BlockLayout& block, const LowBitLayout& layout, const BlockWeights& w, const at::Tensor& out) {
  ZO2_REQUIRE(out.scalar_type() == at::kByte && out.numel() >= layout.bytes, "low-bit block buffer too small");
  for (int s = 0; s < BlockWeights::kSlots; ++s) {
    const std::vector<int64_t>& shape = block.shape[s];
    const at::Tensor& t = w.slot(s);
    if (!layout.quantized[s]) {
      part(out, layout.offset[s], numel(shape) * t.element_size(), t.scalar_type(), shape).copy_(t);
      continue;
    }
    const at::Tensor q = part(out, layout.offset[s], numel(shape), at::kChar, shape);
    const at::Tensor scale = part(out, layout.scale_offset[s], shape[0] * 4, at::kFloat, {shape[0]});
    for (int64_t r = 0; r < shape[0]; r += chunk_rows(shape[1])) {
      const int64_t n = std::min(chunk_rows(shape[1]), shape[0] - r);
      const at::Tensor f = t.narrow(0, r, n).to(at::kFloat);
      const at::Tensor sc = f.abs().amax(1) / 127.0;  // an all-zero row: scale 0, values 0
      scale.narrow(0, r, n).copy_(sc);
      q.narrow(0, r, n).copy_((f / sc.clamp_min(1e-30).unsqueeze(1)).round_().clamp_(-127, 127));
    }
  }
}

void dequantize_block(const BlockLayout& block, const LowBitLayout& layout, const at::Tensor& in, BlockWeights& w) {
  for (int s = 0; s < BlockWeights::kSlots; ++s) {
    const std::vector<int64_t>& shape = block.shape[s];
    at::Tensor& t = w.slot(s);
    if (!layout.quantized[s]) {
      t.copy_(part(in, layout.offset[s], numel(shape) * t.element_size(), t.scalar_type(), shape));
      continue;
    }
    const at::Tensor q = part(in, layout.offset[s], numel(shape), at::kChar, shape);
    const at::Tensor scale = part(in, layout.scale_offset[s], shape[0] * 4, at::kFloat, {shape[0]});
    // q * scale in fp32, rounded once to the storage dtype.
    const int64_t rows = shape[0], chunk = chunk_rows(shape[1]);
    for (int64_t r = 0; r < rows; r += chunk) {
      const int64_t n = std::min(chunk, rows - r);
      t.narrow(0, r, n).copy_(q.narrow(0, r, n).to(at::kFloat) * scale.narrow(0, r, n).unsqueeze(1));
    }
  }
}

}  // namespace zo2
