// Training objectives over per-target log-probabilities (opt_forward.h: target_logprobs), per branch:
// mean token cross-entropy (causal LM, or LM on the option tokens only) and MeZO's classification loss
// (per candidate the mean log-prob of its option tokens, cross-entropy over the candidates).
#pragma once

#include <ATen/ATen.h>

#include "model/opt_forward.h"

namespace zo2 {

enum class LossKind { kTokenMean, kClassification };

// One (micro-)batch, ready for the device: built once, used by every forward of a step.
struct Batch {
  at::Tensor ids;        // [B, T] int64, left-padded
  at::Tensor mask;       // [B, T] int64
  AttnMask attn;         // from mask
  TokenTargets targets;  // which rows predict which tokens
  LossKind kind = LossKind::kTokenMean;
  // Classification: cand[x, c] = batch row of candidate c of example x (-1 = no such candidate),
  // gold[x] = index of the correct candidate.
  at::Tensor cand;
  at::Tensor gold;
  int64_t tokens = 0;    // non-pad tokens (throughput accounting)

  Batch to(const at::Device& device) const;
};

// Loss per branch, [nb] fp32, from logprobs [nb, N] aligned with batch.targets.
at::Tensor batch_loss(const at::Tensor& logprobs, const Batch& batch);
// Per-candidate score (mean log-prob of the target tokens of each batch row), [nb, B].
at::Tensor sequence_scores(const at::Tensor& logprobs, const TokenTargets& targets);

}  // namespace zo2
