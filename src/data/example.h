// Training and evaluation examples as token ids, and how a list of them becomes a left-padded Batch.
// Every objective is expressed the same way: which tokens of which sequence are predicted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/loss.h"

namespace zo2 {

struct Sequence {
  std::vector<int64_t> ids;  // the whole sequence, BOS first
  int64_t target_begin = 1;  // tokens [target_begin, end) are predicted (1: causal LM on everything)
};

// One sequence (language modelling, loss on its targets), or candidates scored against each other
// (classification: `gold` is the correct one).
struct Example {
  std::vector<Sequence> candidates;
  int64_t gold = -1;         // -1: a language-modelling example (one sequence)
  bool is_classification() const { return gold >= 0; }
};

struct BatchOptions {
  int64_t pad_id = 1;
  int64_t max_len = 2048;    // longer sequences keep their first token (BOS) and lose the front after it
  int64_t pad_multiple = 8;  // round T up (MeZO pads to a multiple of 8)
};

// Left-pads the sequences of `examples` into one batch. Classification examples put all their
// candidates in the batch and set cand/gold; language-modelling examples predict their targets.
// All examples of a batch must be of one kind.
Batch make_batch(const std::vector<const Example*>& examples, const BatchOptions& opt);

// Truncation rule: keep ids[0] and the last max_len - 1 ids; target_begin moves with them.
Sequence truncate(const Sequence& s, int64_t max_len);

}  // namespace zo2
