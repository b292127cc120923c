#include "common/kernel_dtype.h"

#include "common/error.h"

namespace zo2 {

kernels::DType kernel_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return kernels::DType::kF32;
    case at::kHalf: return kernels::DType::kF16;
    case at::kBFloat16: return kernels::DType::kBF16;
    default: throw_error("zo2's kernels support float32, float16 and bfloat16, not ", t);
  }
}

}  // namespace zo2
