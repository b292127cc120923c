#include "zo/init.h"

#include "kernels/zo_kernels.h"
#include "zo/perturbation.h"

namespace zo2 {

namespace {
constexpr uint32_t kInitDir = 0xFFFFFFFEu;  // a stream no training step uses
}

void init_random_param(int64_t id, const at::Tensor& t, uint64_t seed) {
  if (t.dim() >= 2) {
    at::Tensor z = direction_z(kernels::step_key(seed, ~0ull), kInitDir, id, t);
    t.copy_(z.mul_(0.02));
  } else {
    t.fill_(is_layer_norm_weight(id) ? 1.0 : 0.0);
  }
}

void init_random_block(const OptConfig& cfg, int64_t layer, BlockWeights& w, uint64_t seed) {
  for (int s = 0; s < BlockWeights::kSlots; ++s) init_random_param(block_param_id(layer, s), w.slot(s), seed);
}

OuterWeights random_outer(const OptConfig& cfg, at::ScalarType dtype, at::Device device, uint64_t seed) {
  OuterWeights o;
  for (const ParamInfo& p : param_table(cfg)) {
    if (p.layer >= 0) continue;
    at::Tensor& t = o.slot(p.slot);
    t = at::empty(p.shape, at::TensorOptions().dtype(dtype).device(device));
    init_random_param(p.id, t, seed);
  }
  return o;
}

OptWeights random_weights(const OptConfig& cfg, at::ScalarType dtype, at::Device device, uint64_t seed) {
  OptWeights w;
  w.outer = random_outer(cfg, dtype, device, seed);
  w.blocks.resize(cfg.layers);
  for (int64_t l = 0; l < cfg.layers; ++l) {
    for (const ParamInfo& p : block_param_table(cfg, l))
      w.blocks[l].slot(p.slot) = at::empty(p.shape, at::TensorOptions().dtype(dtype).device(device));
    init_random_block(cfg, l, w.blocks[l], seed);
  }
  return w;
}

}  // namespace zo2
