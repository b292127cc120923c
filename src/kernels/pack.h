// 16-byte vector access shared by the CUDA kernels: the alignment test their fast paths take, and V
// elements of T moved as one aligned word.
#pragma once

#include <cstdint>

#include "kernels/philox.h"  // ZO2_HD

namespace zo2::kernels {

ZO2_HD inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

}  // namespace zo2::kernels
