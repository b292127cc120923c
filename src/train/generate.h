// Greedy decoding with a KV cache (MeZO's SQuAD/DROP evaluation: generate(do_sample=False,
// num_beams=1, eos_token_id=[id("\n"), eos])), for a resident or a streamed model. The prompts are
// left-padded into one batch and prefilled at once; then each step feeds one token per row, whose
// position continues from the mask's cumsum, and attends over the cached keys and values of every
// layer. A streamed model uploads every block once per step (as ZO2's own generation does).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "zo/zo_model.h"

namespace zo2 {

struct GenerateOptions {
  int64_t max_new_tokens = 50;
  int64_t max_length = 2048;     // prompt + new tokens (also capped by the model's positions)
  std::vector<int64_t> stop_ids;  // a row ends after producing one of these ("\n", EOS)
  int64_t pad_id = 1;
  at::ScalarType compute_dtype = at::kFloat;
  bool keep_logits = false;      // return every step's logits (tests)
};

struct Generated {
  std::vector<std::vector<int64_t>> tokens;  // per prompt: the new ids, without the stop token
  std::vector<bool> stopped;                 // ended at a stop token (else at the length limit)
  std::vector<at::Tensor> logits;            // keep_logits: per step [B, V] fp32 on the CPU
};

// Each prompt (ids, BOS first) gets min(max_new_tokens, max_length - its length) new tokens at most;
// prompts that leave no room get none.
Generated generate(ZoModel& model, const std::vector<std::vector<int64_t>>& prompts, const GenerateOptions& opt);

}  // namespace zo2
