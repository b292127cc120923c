// Random OPT weights for presets and benchmarks, a pure function of (seed, parameter id, element) on the
// counter-based generator: any block can be made alone, on any device, and equals the same block of a
// whole-model initialisation. Matrices N(0, 0.02), biases 0, LayerNorm weights 1.
#pragma once

#include <ATen/ATen.h>

#include "model/opt_weights.h"

namespace zo2 {

void init_random_param(int64_t id, const at::Tensor& t, uint64_t seed);
void init_random_block(const OptConfig& cfg, int64_t layer, BlockWeights& w, uint64_t seed);
OptWeights random_weights(const OptConfig& cfg, at::ScalarType dtype, at::Device device, uint64_t seed);
// Just the outer parameters (embeddings, projections, final LayerNorm, untied head).
OuterWeights random_outer(const OptConfig& cfg, at::ScalarType dtype, at::Device device, uint64_t seed);

}  // namespace zo2
