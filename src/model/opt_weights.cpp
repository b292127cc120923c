#include "model/opt_weights.h"

#include "common/error.h"

namespace zo2 {

namespace {
constexpr at::Tensor BlockWeights::*kBlockFields[BlockWeights::kSlots] = {
    &BlockWeights::k_w,   &BlockWeights::k_b,   &BlockWeights::v_w,   &BlockWeights::v_b,
    &BlockWeights::q_w,   &BlockWeights::q_b,   &BlockWeights::o_w,   &BlockWeights::o_b,
    &BlockWeights::ln1_w, &BlockWeights::ln1_b, &BlockWeights::fc1_w, &BlockWeights::fc1_b,
    &BlockWeights::fc2_w, &BlockWeights::fc2_b, &BlockWeights::ln2_w, &BlockWeights::ln2_b,
};
constexpr const char* kBlockNames[BlockWeights::kSlots] = {
    "self_attn.k_proj.weight", "self_attn.k_proj.bias",       "self_attn.v_proj.weight",
    "self_attn.v_proj.bias",   "self_attn.q_proj.weight",     "self_attn.q_proj.bias",
    "self_attn.out_proj.weight", "self_attn.out_proj.bias",   "self_attn_layer_norm.weight",
    "self_attn_layer_norm.bias", "fc1.weight",                "fc1.bias",
    "fc2.weight",              "fc2.bias",                    "final_layer_norm.weight",
    "final_layer_norm.bias",
};
constexpr at::Tensor OuterWeights::*kOuterFields[OuterWeights::kSlots] = {
    &OuterWeights::embed_tokens, &OuterWeights::embed_positions, &OuterWeights::project_in,
    &OuterWeights::project_out,  &OuterWeights::final_ln_w,      &OuterWeights::final_ln_b,
    &OuterWeights::lm_head,
};
constexpr const char* kOuterNames[OuterWeights::kSlots] = {
    "model.decoder.embed_tokens.weight", "model.decoder.embed_positions.weight",
    "model.decoder.project_in.weight",   "model.decoder.project_out.weight",
    "model.decoder.final_layer_norm.weight", "model.decoder.final_layer_norm.bias",
    "lm_head.weight",
};

std::vector<int64_t> block_shape(const OptConfig& c, int s) {
  const int64_t H = c.hidden, F = c.ffn;
  switch (s) {
    case 10: return {F, H};  // fc1.weight
    case 11: return {F};     // fc1.bias
    case 12: return {H, F};  // fc2.weight
    default: return (s % 2 == 0 && s < 8) ? std::vector<int64_t>{H, H} : std::vector<int64_t>{H};
  }
}
}  // namespace

at::Tensor& BlockWeights::slot(int s) { return this->*kBlockFields[s]; }
const at::Tensor& BlockWeights::slot(int s) const { return this->*kBlockFields[s]; }
at::Tensor& OuterWeights::slot(int id) { return this->*kOuterFields[id]; }
const at::Tensor& OuterWeights::slot(int id) const { return this->*kOuterFields[id]; }

const char* block_slot_name(int slot) { return kBlockNames[slot]; }
// Biases (odd slots) and LayerNorm parameters (slots 8, 9, 14, 15) are not decayed.
bool block_slot_decays(int slot) { return slot % 2 == 0 && slot != 8 && slot != 14; }

bool param_decays(int64_t id) {
  if (id >= kFirstBlockId) return block_slot_decays(static_cast<int>((id - kFirstBlockId) % 16));
  return id != kFinalLnWeight && id != kFinalLnBias;
}

std::vector<ParamInfo> block_param_table(const OptConfig& c, int64_t layer) {
  std::vector<ParamInfo> t;
  for (int s = 0; s < BlockWeights::kSlots; ++s) {
    t.push_back({block_param_id(layer, s),
                 "model.decoder.layers." + std::to_string(layer) + "." + kBlockNames[s], block_shape(c, s),
                 layer, s, block_slot_decays(s)});
  }
  return t;
}

std::vector<ParamInfo> param_table(const OptConfig& c) {
  const int64_t V = c.vocab_size, E = c.word_embed_dim, H = c.hidden;
  std::vector<ParamInfo> t;
  auto add = [&](int id, std::vector<int64_t> shape, bool decays) {
    t.push_back({id, kOuterNames[id], std::move(shape), -1, id, decays});
  };
  add(kEmbedTokens, {V, E}, true);
  add(kEmbedPositions, {c.position_rows(), H}, true);
  if (c.has_projections()) {
    add(kProjectIn, {H, E}, true);
    add(kProjectOut, {E, H}, true);
  }
  if (c.has_final_ln()) {
    add(kFinalLnWeight, {H}, false);
    add(kFinalLnBias, {H}, false);
  }
  if (!c.tie_word_embeddings) add(kLmHead, {V, E}, true);
  for (int64_t l = 0; l < c.layers; ++l) {
    auto b = block_param_table(c, l);
    t.insert(t.end(), b.begin(), b.end());
  }
  return t;
}

void for_each_param(const OptConfig& c, OptWeights& w,
                    const std::function<void(const ParamInfo&, at::Tensor&)>& fn) {
  for (const ParamInfo& p : param_table(c)) {
    at::Tensor& t = p.layer < 0 ? w.outer.slot(p.slot) : w.blocks.at(p.layer).slot(p.slot);
    if (t.defined()) fn(p, t);
  }
}

ParamInfo param_info(const OptConfig& c, int64_t id) {
  if (id >= kFirstBlockId) {
    const int64_t layer = (id - kFirstBlockId) / 16;
    return block_param_table(c, layer)[static_cast<size_t>((id - kFirstBlockId) % 16)];
  }
  for (const ParamInfo& p : param_table(c))
    if (p.id == id) return p;
  throw_error("model ", c.name, " has no parameter ", id);
}

bool is_layer_norm_weight(int64_t id) {
  if (id >= kFirstBlockId) {
    const int64_t s = (id - kFirstBlockId) % 16;
    return s == 8 || s == 14;
  }
  return id == kFinalLnWeight;
}

void check_weights(const OptConfig& c, const OptWeights& w, const std::string& source) {
  ZO2_REQUIRE(static_cast<int64_t>(w.blocks.size()) == c.layers, source, ": has ", w.blocks.size(),
              " decoder layers, config says ", c.layers);
  for (const ParamInfo& p : param_table(c)) {
    const at::Tensor& t = p.layer < 0 ? w.outer.slot(p.slot) : w.blocks[p.layer].slot(p.slot);
    ZO2_REQUIRE(t.defined(), source, ": tensor ", p.name, " is missing");
    ZO2_REQUIRE(t.sizes().vec() == p.shape, source, ": tensor ", p.name, " has shape ", t.sizes(),
                ", config needs ", at::IntArrayRef(p.shape));
  }
}

}  // namespace zo2
