#include "common/checksum.h"

#include <algorithm>

namespace zo2 {

uint64_t tensor_checksum(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  const int64_t bytes = c.numel() * static_cast<int64_t>(c.element_size());
  // The bytes as 16-bit words (every supported dtype is a multiple of 2 bytes), in chunks so a block
  // of OPT-175B needs no more than a few hundred MB of temporaries.
  at::Tensor words = at::from_blob(c.data_ptr(), {bytes / 2}, c.options().dtype(at::kShort));
  const int64_t chunk = int64_t(1) << 25;
  uint64_t a = 0, b = 0;
  for (int64_t s = 0; s < words.numel(); s += chunk) {
    const int64_t n = std::min(chunk, words.numel() - s);
    at::Tensor w = words.narrow(0, s, n).to(at::kLong);
    at::Tensor idx = at::arange(s, s + n, w.options());
    // sum_i (w_i + 1)(2i + 1) and sum_i w_i^2 (i + 7), wrapping mod 2^64
    a += static_cast<uint64_t>((w + 1).mul_(idx * 2 + 1).sum().item<int64_t>());
    b += static_cast<uint64_t>((w * w).mul_(idx + 7).sum().item<int64_t>());
  }
  return (a * 0x9E3779B97F4A7C15ull) ^ b ^ (static_cast<uint64_t>(bytes) << 1);
}

}  // namespace zo2
