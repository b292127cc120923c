// 64-bit checksums of tensor bytes, for comparing replicas across ranks (every replica must hold
// bitwise-identical weights). Computed where the tensor lives; position-dependent, so swapped elements
// change it too.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace zo2 {

uint64_t tensor_checksum(const at::Tensor& t);

}  // namespace zo2
