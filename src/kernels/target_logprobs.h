// log p(target) of each row of the LM head's logits without materialising log-softmax: one read of the
// logits (online max and sum of exponentials in fp32), one float per row written. log_softmax in fp32
// wrote the row again at twice the width and gather read it back. Torch-free; CUDA only.
#pragma once

#include <cstdint>

#include "kernels/zo_kernels.h"  // DType

namespace zo2::kernels::cuda {

// out[b * out_stride + r] = logits[b][r][t] - log(sum_j exp(logits[b][r][j])), t = targets[r], for
// b < nb, r < rows; logits [nb, rows, vocab] contiguous in `dtype`, targets int64 on the device (an id
// outside [0, vocab) gives NaN).
void target_logprobs(const void* logits, DType dtype, int64_t nb, int64_t rows, int64_t vocab, const int64_t* targets,
                     float* out, int64_t out_stride, void* stream);

}  // namespace zo2::kernels::cuda
