// OPT weights as plain structs, and the fixed order and numeric id of every parameter.
//
// Parameter ids (docs/model.md) key the zeroth-order random numbers, so they never change:
//   0 embed_tokens  1 embed_positions  2 project_in  3 project_out  4 final_layer_norm.weight
//   5 final_layer_norm.bias  6 lm_head (untied only)            (ids 7..15 reserved)
//   block i, slot s (BlockSlot below): 16 + 16*i + s
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <functional>
#include <string>
#include <vector>

#include "model/opt_config.h"

namespace zo2 {

// One decoder block: offloading moves it as a unit. Field order = slot order = transformers'
// registration order (k, v, q, out, self_attn_layer_norm, fc1, fc2, final_layer_norm).
struct BlockWeights {
  at::Tensor k_w, k_b;      // [H, H], [H]
  at::Tensor v_w, v_b;      // [H, H], [H]
  at::Tensor q_w, q_b;      // [H, H], [H]
  at::Tensor o_w, o_b;      // [H, H], [H]   out_proj
  at::Tensor ln1_w, ln1_b;  // [H], [H]      self_attn_layer_norm
  at::Tensor fc1_w, fc1_b;  // [F, H], [F]
  at::Tensor fc2_w, fc2_b;  // [H, F], [H]
  at::Tensor ln2_w, ln2_b;  // [H], [H]      final_layer_norm (of the block)

  static constexpr int kSlots = 16;
  at::Tensor& slot(int s);
  const at::Tensor& slot(int s) const;
};
static_assert(sizeof(BlockWeights) == BlockWeights::kSlots * sizeof(at::Tensor),
              "BlockWeights must hold exactly its 16 slot tensors");

enum OuterId : int64_t {
  kEmbedTokens = 0,
  kEmbedPositions = 1,
  kProjectIn = 2,
  kProjectOut = 3,
  kFinalLnWeight = 4,
  kFinalLnBias = 5,
  kLmHead = 6,
  kFirstBlockId = 16,
};

// Embeddings, projections, final LayerNorm and the untied head: resident on the compute device.
// Absent parameters (no projections, post-LN, tied head) are undefined tensors.
struct OuterWeights {
  at::Tensor embed_tokens;     // [V, E]
  at::Tensor embed_positions;  // [max_positions + 2, H]
  at::Tensor project_in;       // [H, E]   (E != H only)
  at::Tensor project_out;      // [E, H]   (E != H only)
  at::Tensor final_ln_w;       // [H]      (pre-LN only)
  at::Tensor final_ln_b;       // [H]
  at::Tensor lm_head;          // [V, E]   (untied only; else the head is embed_tokens)

  static constexpr int kSlots = 7;
  at::Tensor& slot(int id);
  const at::Tensor& slot(int id) const;
  const at::Tensor& head() const { return lm_head.defined() ? lm_head : embed_tokens; }
};

struct OptWeights {
  OuterWeights outer;
  std::vector<BlockWeights> blocks;
};

inline int64_t block_param_id(int64_t layer, int slot) { return kFirstBlockId + 16 * layer + slot; }
// Weight decay applies to matrices and embeddings, not to biases and LayerNorm parameters.
bool param_decays(int64_t id);

// What the table below says about one parameter.
struct ParamInfo {
  int64_t id;
  std::string name;              // transformers name, e.g. "model.decoder.layers.3.fc1.weight"
  std::vector<int64_t> shape;
  int64_t layer;                 // -1 for outer parameters
  int slot;                      // block slot, or outer id
  bool decays;                   // weight decay applies (not to biases and LayerNorm parameters)
};

// Every parameter the config has, in id order (outer first, then blocks 0..L-1, each in slot order).
std::vector<ParamInfo> param_table(const OptConfig& cfg);
// The 16 slots of one block (layer given), in slot order.
std::vector<ParamInfo> block_param_table(const OptConfig& cfg, int64_t layer);
// transformers' short name of a block slot ("self_attn.k_proj.weight", ...).
const char* block_slot_name(int slot);
bool block_slot_decays(int slot);

// Visit every defined parameter tensor with its info (outer, then blocks).
void for_each_param(const OptConfig& cfg, OptWeights& w,
                    const std::function<void(const ParamInfo&, at::Tensor&)>& fn);

// The parameter table entry of parameter `id` (outer or block).
ParamInfo param_info(const OptConfig& cfg, int64_t id);
// True for LayerNorm weights (initialised to 1).
bool is_layer_norm_weight(int64_t id);

// Checks that every tensor the config needs is present with the right shape; `source` names the
// checkpoint in the message.
void check_weights(const OptConfig& cfg, const OptWeights& w, const std::string& source);

}  // namespace zo2
