// OPT forward exactly as transformers' OPTForCausalLM (docs/model.md), as free functions per layer.
// Activations carry a leading branch dimension nb (see ParamSource): x is [nb, B, T, H].
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>

#include "model/opt_config.h"
#include "model/opt_weights.h"
#include "model/param_source.h"

namespace zo2 {

// Attention mask for a left-padded batch, built once per batch.
struct AttnMask {
  at::Tensor positions;  // [B, T] int64 rows of embed_positions: cumsum(mask)*mask - 1 + 2 (pads -> 1)
  at::Tensor additive;   // [B, 1, T, T] fp32, 0 or finfo(float).min: causal + padding (manual path)
  at::Tensor allowed;    // [B, 1, T, T] bool, for SDPA; rows with no visible key fully allowed, as in
                         // transformers' _unmask_unattended (both give uniform attention there)
  bool no_padding = true;  // causal mask alone suffices
  bool use_sdpa = false;   // LibTorch >= 2 on CUDA
};

enum class AttentionImpl { kAuto, kManual };
AttnMask make_attn_mask(const at::Tensor& mask, AttentionImpl impl = AttentionImpl::kAuto);

// Optional tap on intermediate tensors (name, layer or -1, tensor) for comparisons with transformers.
using Trace = std::function<void(const std::string&, int64_t, const at::Tensor&)>;

// --- layers (branch-aware) ---
// y = scale * (x W^T + b) for x [nb, ..., in]; W is parameter `id` (stored as `w`), b [nb, out] or
// undefined; relu: max(y, 0); plus `residual` ([nb, ..., out], neither ReLU nor scale) when given.
// ReLU, scale and residual go into the matmul's epilogue where the backend can.
at::Tensor linear(ParamSource& src, int64_t id, const at::Tensor& w, const at::Tensor& b, const at::Tensor& x,
                  bool relu = false, double scale = 1.0, const at::Tensor& residual = at::Tensor());
at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);  // w, b: [nb, H]
// q [nb, B, Tq, H]; k, v [nb, B, Tk, H] with Tk >= Tq (Tk > Tq: keys from a KV cache, and `mask` is then
// [B, 1, Tq, Tk] with no_padding false, as SDPA's is_causal would align the queries to the first keys).
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                     const AttnMask& mask);
// A block's attention given q (already scaled), k and v; generation passes one that keeps a KV cache.
using AttentionFn = std::function<at::Tensor(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v)>;

// --- model pieces, in the order the offload pipeline calls them ---
// Token + position embeddings (+ project_in): [nb, B, T, H].
at::Tensor embed_forward(const OptConfig& cfg, const OuterWeights& w, ParamSource& src, const at::Tensor& ids,
                         const AttnMask& mask);
// `attn` replaces attention(q, k, v, heads, mask) when given.
at::Tensor block_forward(const OptConfig& cfg, const BlockWeights& w, int64_t layer, const at::Tensor& x,
                         const AttnMask& mask, ParamSource& src, const Trace* trace = nullptr,
                         const AttentionFn* attn = nullptr);
// Final LayerNorm (pre-LN) and project_out: [nb, B, T, E].
at::Tensor final_forward(const OptConfig& cfg, const OuterWeights& w, ParamSource& src, const at::Tensor& x);

// All of the above for a model held whole on one device.
at::Tensor decoder_forward(const OptConfig& cfg, const OptWeights& w, ParamSource& src, const at::Tensor& ids,
                           const AttnMask& mask, const Trace* trace = nullptr);

// --- the head, only where asked ---
// Which hidden rows feed the LM head and what they must predict, built once per batch.
struct TokenTargets {
  at::Tensor rows;     // [N] int64 rows of the flattened [B*T] hidden states
  at::Tensor targets;  // [N] int64 token each row must predict
  at::Tensor seq;      // [N] int64 sequence (batch row) of each target
  int64_t batch = 0;   // B
};
// Causal LM targets: position t predicts labels[t+1]; labels == -100 are ignored.
TokenTargets causal_lm_targets(const at::Tensor& labels);

// log p(target) for each target row, [nb, N] fp32. Logits are formed `chunk_rows` rows at a time
// (compute dtype, then fp32 log-softmax, or on a GPU one kernel's fp32 log-sum-exp), so B×T×V logits
// never exist at once.
at::Tensor target_logprobs(const OptConfig& cfg, const OuterWeights& w, ParamSource& src, const at::Tensor& hidden,
                           const TokenTargets& tt, int64_t chunk_rows = 1024);
// Logits of the given flattened rows, [nb, N, V] in fp32 (for evaluation and tests).
at::Tensor logits_at(const OptConfig& cfg, const OuterWeights& w, ParamSource& src, const at::Tensor& hidden,
                     const at::Tensor& rows);

}  // namespace zo2
