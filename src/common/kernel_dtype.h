// The torch-free kernels' dtype of a LibTorch scalar type.
#pragma once

#include <ATen/ATen.h>

#include "kernels/zo_kernels.h"

namespace zo2 {

// float32, float16 and bfloat16; anything else throws naming the type.
kernels::DType kernel_dtype(at::ScalarType t);

}  // namespace zo2
