#include "model/opt_forward.h"

#include <c10/core/GradMode.h>
#include <torch/version.h>

#include <algorithm>
#include <iterator>
#include <limits>

#include "common/error.h"
#include "common/profile.h"
#ifdef ZO2_WITH_CUDA
#include "common/device.h"
#include "common/kernel_dtype.h"
#include "kernels/gemm_lt.h"
#include "kernels/layer_norm.h"
#include "kernels/target_logprobs.h"
#endif

namespace zo2 {

AttnMask make_attn_mask(const at::Tensor& mask, AttentionImpl impl) {
  ZO2_REQUIRE(mask.dim() == 2, "attention mask must be [batch, seq], got ", mask.sizes());
  const int64_t T = mask.size(1);
  at::Tensor m = mask.to(at::kLong);
  AttnMask out;
  // transformers: position_ids = cumsum(mask) * mask - 1, then the table row is position + 2.
  out.positions = at::cumsum(m, 1) * m + 1;
  at::Tensor seen = m.to(at::kBool);
  at::Tensor causal = at::ones({T, T}, seen.options()).tril();
  at::Tensor allowed = causal.view({1, 1, T, T}) & seen.view({-1, 1, 1, T});
  out.no_padding = seen.all().item<bool>();
  out.additive = at::zeros(allowed.sizes(), mask.options().dtype(at::kFloat))
                     .masked_fill_(allowed.logical_not(), std::numeric_limits<float>::lowest());
  out.allowed = allowed | allowed.any(-1, /*keepdim=*/true).logical_not();
#if TORCH_VERSION_MAJOR >= 2
  out.use_sdpa = impl == AttentionImpl::kAuto && mask.is_cuda();
#else
  (void)impl;
#endif
  return out;
}

at::Tensor linear(ParamSource& src, int64_t id, const at::Tensor& w, const at::Tensor& b, const at::Tensor& x,
                  bool relu, double scale, const at::Tensor& residual) {
  const int64_t nb = x.size(0), out = w.size(0);
  ZO2_REQUIRE(!relu || scale == 1.0, "linear: ReLU with a scale is not supported");
  ZO2_REQUIRE(!residual.defined() || (!relu && scale == 1.0), "linear: a residual goes with neither ReLU nor scale");
  std::vector<int64_t> shape = x.sizes().vec();
  at::Tensor x3 = x.reshape({nb, -1, shape.back()});
  at::Tensor r3 = residual.defined() ? residual.reshape({nb, x3.size(1), out}) : at::Tensor();
  at::Tensor y, workspace;
  src.mat(id, w, [&](int64_t b0, const at::Tensor& W) {
    PhaseScope phase("gemm", x.device());
    const int64_t g = W.size(0);
#ifdef ZO2_WITH_CUDA
    // cuBLASLt matmuls (one per branch or pair) with bias, ReLU, scale and the residual in the epilogue
    // (also for nb = 1, so an evaluation computes what a training branch does); autograd keeps LibTorch's.
    const bool lt = x.is_cuda() && x.scalar_type() != at::kDouble && W.scalar_type() == x.scalar_type() &&
                    (!b.defined() || b.scalar_type() == x.scalar_type()) &&
                    (!residual.defined() || residual.scalar_type() == x.scalar_type()) &&
                    !(c10::GradMode::is_enabled() && (x.requires_grad() || W.requires_grad()));
#else
    const bool lt = false;
#endif
    if (g == 1 && nb == 1 && !lt) {  // functional ops: autograd (tests) cannot go through out= variants
      y = at::linear(x3[0], W[0], b.defined() ? b[0] : at::Tensor()).unsqueeze(0);
      if (relu) y.relu_();
      if (scale != 1.0) y = y * scale;
      if (r3.defined()) y = r3 + y;
      return;
    }
    if (!y.defined()) y = at::empty({nb, x3.size(1), out}, x.options());
    at::Tensor yg = y.narrow(0, b0, g), xg = x3.narrow(0, b0, g).contiguous();
    // The scale goes in as alpha with a scaled bias: one rounding of scale * (x W^T + b) instead of
    // two, the same value when scale is a power of two.
    auto bias_of = [&](int64_t i, int64_t count) {
      at::Tensor bb = b.narrow(0, b0 + i, count);
      return scale != 1.0 ? bb * scale : bb;
    };
#ifdef ZO2_WITH_CUDA
    // Branches i .. i + count - 1 as one cuBLASLt matmul; false where it cannot take them.
    auto lt_run = [&](int64_t i, int64_t count) {
      if (!lt) return false;
      if (!workspace.defined())
        workspace = at::empty({int64_t(kernels::cuda::kLtWorkspaceBytes)}, x.options().dtype(at::kByte));
      const at::Tensor Wc = W.narrow(0, i, count).contiguous(), bc = b.defined() ? bias_of(i, count) : at::Tensor();
      if (bc.defined() && bc.stride(-1) != 1) return false;
      kernels::cuda::LtLinear l;
      l.dtype = kernel_dtype(x.scalar_type());
      l.m = xg.size(1), l.n = out, l.k = xg.size(2), l.batch = count;
      l.x = xg[i].data_ptr(), l.w = Wc.data_ptr(), l.y = yg[i].data_ptr();
      l.x_stride = xg.stride(0), l.w_stride = Wc.stride(0), l.y_stride = yg.stride(0);
      l.bias = bc.defined() ? bc.data_ptr() : nullptr;
      l.bias_stride = bc.defined() ? bc.stride(0) : 0;
      l.residual = r3.defined() ? r3[b0 + i].data_ptr() : nullptr;
      if (r3.defined() && r3.stride(0) != yg.stride(0)) return false;
      l.alpha = float(scale), l.relu = relu;
      return kernels::cuda::lt_linear(l, workspace.data_ptr(), workspace.numel(), current_stream(x.device()));
    };
    // A direction's two branches share a matmul where that fills the GPU better (gemm_lt.h); pairs
    // start at even branches, so a branch's result does not depend on how branches are grouped.
    const int64_t per = lt && g > 1 ? kernels::cuda::lt_branches_per_matmul(xg.size(1), out) : 1;
#else
    auto lt_run = [](int64_t, int64_t) { return false; };
    const int64_t per = 1;
#endif
    for (int64_t i = 0; i < g;) {
      if (per == 2 && (b0 + i) % 2 == 0 && i + 1 < g && lt_run(i, 2)) {
        i += 2;
        continue;
      }
      if (lt_run(i, 1)) {
        ++i;
        continue;
      }
      at::Tensor yi = yg[i], Wi = W[i].contiguous();
      at::Tensor bi = b.defined() ? bias_of(i, 1)[0].contiguous() : at::Tensor();
      // One addmm per branch: its bias (and ReLU) go into the matmul's epilogue (cuBLASLt), where baddbmm
      // would first broadcast-copy the biases into the output and read them back, and a separate ReLU
      // would make one more pass. ReLU commutes with the rounding, so fusing it changes no value.
      if (!bi.defined()) {
        at::mm_out(yi, xg[i], Wi.t());
        if (relu) yi.relu_();
        if (scale != 1.0) yi.mul_(scale);
      } else if (relu) {
        at::_addmm_activation_out(yi, bi, xg[i], Wi.t());
      } else {
        at::addmm_out(yi, bi, xg[i], Wi.t(), 1.0, scale);
      }
      if (r3.defined()) yi.add_(r3[b0 + i]);
      ++i;
    }
  });
  shape.back() = out;
  return y.view(shape);
}

at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  PhaseScope phase("layernorm", x.device());
  const int64_t nb = w.size(0), H = w.size(1);
#ifdef ZO2_WITH_CUDA
  // All branches in one launch, each with its own gain and bias, written in place (no stack); also
  // for nb = 1, so an evaluation computes what a training branch does.
  if (x.is_cuda() && x.size(0) == nb && x.size(-1) == H && x.is_contiguous() && w.dim() == 2 && b.dim() == 2 &&
      w.stride(1) == 1 && b.stride(1) == 1 && w.scalar_type() == x.scalar_type() &&
      b.scalar_type() == x.scalar_type() && x.scalar_type() != at::kDouble) {
    at::Tensor y = at::empty_like(x);
    kernels::cuda::layer_norm(x.data_ptr(), w.data_ptr(), w.stride(0), b.data_ptr(), b.stride(0), y.data_ptr(),
                              kernel_dtype(x.scalar_type()), nb, x.numel() / (nb * H), H, 1e-5f,
                              current_stream(x.device()));
    return y;
  }
#endif
  if (nb == 1) return at::layer_norm(x, {H}, w[0], b[0], 1e-5);
  // One fused LayerNorm per branch (its own perturbed gain and bias) and a stack: a third less traffic
  // than normalising all branches at once and applying the affine as two more passes, one rounding
  // instead of three, and every branch bitwise what a one-branch forward computes.
  std::vector<at::Tensor> outs;
  for (int64_t i = 0; i < nb; ++i) outs.push_back(at::layer_norm(x[i], {H}, w[i], b[i], 1e-5));
  return at::stack(outs);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                     const AttnMask& mask) {
  const int64_t nb = q.size(0), B = q.size(1), T = q.size(2), Tk = k.size(2), H = q.size(3), hd = H / heads;
  PhaseScope phase("attention", q.device());
  auto split = [&](const at::Tensor& t) { return t.reshape({nb * B, t.size(2), heads, hd}).transpose(1, 2); };
  at::Tensor Q = split(q), K = split(k), V = split(v), o;
#if TORCH_VERSION_MAJOR >= 2
  if (mask.use_sdpa) {
    // q was already scaled by head_dim^-0.5, as transformers does, hence scale 1.
    if (mask.no_padding)
      o = at::scaled_dot_product_attention(Q, K, V, {}, 0.0, /*is_causal=*/true, /*scale=*/1.0);
    else
      o = at::scaled_dot_product_attention(Q, K, V, mask.allowed.repeat({nb, 1, 1, 1}), 0.0, false, 1.0);
    return o.transpose(1, 2).reshape({nb, B, T, H});
  }
#endif
  at::Tensor s = at::matmul(Q, K.transpose(-1, -2));
  s = s.to(at::promote_types(s.scalar_type(), at::kFloat)).view({nb, B, heads, T, Tk});
  at::Tensor p = at::softmax(s + mask.additive.unsqueeze(0), -1).to(q.scalar_type());
  o = at::matmul(p.view({nb * B, heads, T, Tk}), V);
  return o.transpose(1, 2).reshape({nb, B, T, H});
}

at::Tensor embed_forward(const OptConfig& cfg, const OuterWeights& w, ParamSource& src, const at::Tensor& ids,
                         const AttnMask& mask) {
  const int64_t nb = src.branches(), B = ids.size(0), T = ids.size(1);
  at::Tensor tok = src.rows(kEmbedTokens, w.embed_tokens, ids.reshape(-1));  // [nb, B*T, E]
  if (cfg.has_projections()) tok = linear(src, kProjectIn, w.project_in, at::Tensor(), tok);
  at::Tensor pos = src.rows(kEmbedPositions, w.embed_positions, mask.positions.reshape(-1));
  return (tok + pos).view({nb, B, T, cfg.hidden});
}

at::Tensor block_forward(const OptConfig& cfg, const BlockWeights& w, int64_t layer, const at::Tensor& x,
                         const AttnMask& mask, ParamSource& src, const Trace* trace, const AttentionFn* attn) {
  auto tap = [&](const char* name, const at::Tensor& t) {
    if (trace) (*trace)(name, layer, t);
  };
  auto id = [&](int slot) { return block_param_id(layer, slot); };
  // The block's biases and LayerNorm parameters: one pass for all of them where the source can.
  std::vector<std::pair<int64_t, at::Tensor>> vecs;
  for (int s : {1, 3, 5, 7, 8, 9, 11, 13, 14, 15}) vecs.emplace_back(id(s), w.slot(s));
  src.hint_vecs(vecs);
  auto ln = [&](const at::Tensor& t, int slot) {
    at::Tensor gw = src.vec(id(slot), w.slot(slot));
    return layer_norm(t, gw, src.vec(id(slot + 1), w.slot(slot + 1)));
  };
  // The matrices in the order the block reads them: each pass hints the one after it.
  static constexpr int kOrder[] = {0, 2, 4, 6, 10, 12};
  auto lin = [&](const at::Tensor& t, int slot, bool relu = false, double scale = 1.0,
                 const at::Tensor& residual = at::Tensor()) {
    at::Tensor bias = src.vec(id(slot + 1), w.slot(slot + 1));
    const int* pos = std::find(std::begin(kOrder), std::end(kOrder), slot);
    if (pos + 1 < std::end(kOrder)) src.hint_next(id(pos[1]), w.slot(pos[1]));
    return linear(src, id(slot), w.slot(slot), bias, t, relu, scale, residual);
  };
  const double scaling = 1.0 / std::sqrt(static_cast<double>(cfg.head_dim()));

  at::Tensor h = cfg.pre_ln ? ln(x, 8) : x;
  tap("attn_in", h);
  at::Tensor k = lin(h, 0);
  at::Tensor v = lin(h, 2);
  at::Tensor q = lin(h, 4, false, scaling);
  at::Tensor a = attn ? (*attn)(q, k, v) : attention(q, k, v, cfg.heads, mask);
  tap("attn", a);
  at::Tensor r = lin(a, 6, false, 1.0, x);  // x + out_proj(a), the residual in the matmul where it can
  if (!cfg.pre_ln) r = ln(r, 8);
  tap("resid_attn", r);
  h = cfg.pre_ln ? ln(r, 14) : r;
  h = lin(h, 10, /*relu=*/true);
  tap("fc1", h);
  at::Tensor out = lin(h, 12, false, 1.0, r);
  if (!cfg.pre_ln) out = ln(out, 14);
  src.settle();
  tap("block_out", out);
  return out;
}

at::Tensor final_forward(const OptConfig& cfg, const OuterWeights& w, ParamSource& src, const at::Tensor& x) {
  at::Tensor h = x;
  if (cfg.has_final_ln()) {
    at::Tensor gw = src.vec(kFinalLnWeight, w.final_ln_w);
    h = layer_norm(h, gw, src.vec(kFinalLnBias, w.final_ln_b));
  }
  if (cfg.has_projections()) h = linear(src, kProjectOut, w.project_out, at::Tensor(), h);
  return h;
}

at::Tensor decoder_forward(const OptConfig& cfg, const OptWeights& w, ParamSource& src, const at::Tensor& ids,
                           const AttnMask& mask, const Trace* trace) {
  at::Tensor x = embed_forward(cfg, w.outer, src, ids, mask);
  for (int64_t l = 0; l < cfg.layers; ++l) {
    if (trace) (*trace)("hidden", l, x);
    x = block_forward(cfg, w.blocks[l], l, x, mask, src, trace);
  }
  x = final_forward(cfg, w.outer, src, x);
  if (trace) (*trace)("hidden", cfg.layers, x);
  return x;
}

TokenTargets causal_lm_targets(const at::Tensor& labels) {
  ZO2_REQUIRE(labels.dim() == 2 && labels.size(1) >= 2, "labels must be [batch, seq>=2], got ", labels.sizes());
  const int64_t B = labels.size(0), T = labels.size(1);
  at::Tensor next = labels.to(at::kLong).narrow(1, 1, T - 1);
  at::Tensor idx = next.reshape(-1).ne(-100).nonzero().squeeze(1);
  at::Tensor b = idx.div(T - 1, "floor");
  TokenTargets tt;
  tt.rows = b * T + (idx - b * (T - 1));
  tt.targets = next.reshape(-1).index_select(0, idx);
  tt.seq = b;
  tt.batch = B;
  return tt;
}

namespace {
const at::Tensor& head_of(const OuterWeights& w, int64_t* id) {
  *id = w.lm_head.defined() ? kLmHead : kEmbedTokens;
  return w.head();
}

// Logits and log-probs are at least fp32 (transformers: logits.float()); an fp64 model keeps fp64.
at::ScalarType loss_dtype(const at::Tensor& t) { return at::promote_types(t.scalar_type(), at::kFloat); }

// [g, c, E] x [g, V, E] -> [g, c, V] in the compute dtype.
at::Tensor head_logits(const at::Tensor& h, const at::Tensor& W) {
  if (W.size(0) == 1) return at::matmul(h[0], W[0].t()).unsqueeze(0);
  return at::bmm(h, W.transpose(1, 2));
}
}  // namespace

at::Tensor target_logprobs(const OptConfig& cfg, const OuterWeights& w, ParamSource& src, const at::Tensor& hidden,
                           const TokenTargets& tt, int64_t chunk_rows) {
  const int64_t nb = hidden.size(0), E = hidden.size(-1), N = tt.rows.numel();
  at::Tensor h = hidden.reshape({nb, -1, E}).index_select(1, tt.rows);
  int64_t id;
  const at::Tensor& head = head_of(w, &id);
  at::Tensor out = at::empty({nb, N}, hidden.options().dtype(loss_dtype(hidden)));
  // On a GPU one kernel reads each chunk's logits once (kernels/target_logprobs.h).
  bool fused = false;
#ifdef ZO2_WITH_CUDA
  fused = hidden.is_cuda() && hidden.scalar_type() != at::kDouble && out.scalar_type() == at::kFloat &&
          tt.targets.scalar_type() == at::kLong && tt.targets.is_contiguous();
#endif
  src.mat(id, head, [&](int64_t b0, const at::Tensor& W) {
    const int64_t g = W.size(0);
    int64_t chunk = chunk_rows;
    if (chunk <= 0)  // keep each chunk's logits (fp32 unless fused) near 128 MiB
      chunk = std::max<int64_t>(1, (int64_t(128) << 20) / ((fused ? h.element_size() : 4) * g * cfg.vocab_size));
    PhaseScope phase("head", hidden.device());
    for (int64_t s = 0; s < N; s += chunk) {
      const int64_t c = std::min(chunk, N - s);
      const at::Tensor logits = head_logits(h.narrow(0, b0, g).narrow(1, s, c), W);
#ifdef ZO2_WITH_CUDA
      if (fused) {
        const at::Tensor rows = logits.contiguous();  // a matmul's output: no copy
        kernels::cuda::target_logprobs(rows.data_ptr(), kernel_dtype(rows.scalar_type()), g, c, rows.size(2),
                                       tt.targets.data_ptr<int64_t>() + s, out.data_ptr<float>() + b0 * N + s, N,
                                       current_stream(hidden.device()));
        continue;
      }
#endif
      // log_softmax upcasts inside its one kernel; a separate cast and logsumexp made five passes
      // over the chunk's fp32 logits.
      at::Tensor logp = at::log_softmax(logits, 2, loss_dtype(h));
      at::Tensor tgt = tt.targets.narrow(0, s, c).view({1, c, 1}).expand({g, c, 1});
      out.narrow(0, b0, g).narrow(1, s, c).copy_(logp.gather(2, tgt).squeeze(2));
    }
  });
  return out;
}

at::Tensor logits_at(const OptConfig&, const OuterWeights& w, ParamSource& src, const at::Tensor& hidden,
                     const at::Tensor& rows) {
  const int64_t nb = hidden.size(0), E = hidden.size(-1);
  int64_t id;
  const at::Tensor& head = head_of(w, &id);
  at::Tensor h = hidden.reshape({nb, -1, E}).index_select(1, rows);
  at::Tensor out = at::empty({nb, rows.numel(), head.size(0)}, hidden.options().dtype(loss_dtype(hidden)));
  src.mat(id, head, [&](int64_t b0, const at::Tensor& W) {
    out.narrow(0, b0, W.size(0)).copy_(head_logits(h.narrow(0, b0, W.size(0)), W));
  });
  return out;
}

}  // namespace zo2
