#include "train/generate.h"

#include <torch/version.h>

#include <algorithm>
#include <limits>

#include "common/error.h"

namespace zo2 {

namespace {

// The mask of one decode step: the new token (last column of `seen`, 0 for rows already done) attends
// to every real token so far; its position continues the row's count of real tokens.
AttnMask step_mask(const at::Tensor& seen) {
  const int64_t B = seen.size(0), Tk = seen.size(1);
  AttnMask m;
  m.positions = seen.sum(1, /*keepdim=*/true) * seen.narrow(1, Tk - 1, 1) + 1;
  at::Tensor allowed = seen.to(at::kBool).view({B, 1, 1, Tk});
  m.additive = at::zeros(allowed.sizes(), seen.options().dtype(at::kFloat))
                   .masked_fill_(allowed.logical_not(), std::numeric_limits<float>::lowest());
  m.allowed = allowed;
  m.no_padding = false;  // one query against Tk keys: SDPA's is_causal would let it see only the first
#if TORCH_VERSION_MAJOR >= 2
  m.use_sdpa = seen.is_cuda();
#endif
  return m;
}

}  // namespace

Generated generate(ZoModel& model, const std::vector<std::vector<int64_t>>& prompts, const GenerateOptions& opt) {
  c10::InferenceMode guard;
  const OptConfig& cfg = model.config();
  const OuterWeights& outer = model.outer_weights();
  const at::Device dev = model.device();
  PlainParams plain(opt.compute_dtype);
  const int64_t B = static_cast<int64_t>(prompts.size());
  const int64_t max_len = std::min(opt.max_length, cfg.max_positions);

  Generated out;
  out.tokens.resize(B);
  out.stopped.assign(B, false);
  std::vector<int64_t> limit(B);
  std::vector<bool> active(B);
  int64_t T0 = 0;
  bool any = false;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = static_cast<int64_t>(prompts[b].size());
    ZO2_REQUIRE(n >= 1 && n <= cfg.max_positions, "generation prompt ", b, " has ", n, " tokens (the model takes 1..",
                cfg.max_positions, ")");
    limit[b] = std::max<int64_t>(0, std::min(opt.max_new_tokens, max_len - n));
    active[b] = limit[b] > 0;
    any = any || active[b];
    T0 = std::max(T0, n);
  }
  if (!any) return out;

  at::Tensor ids = at::full({B, T0}, opt.pad_id, at::kLong), seen = at::zeros({B, T0}, at::kLong);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = static_cast<int64_t>(prompts[b].size());
    ids[b].narrow(0, T0 - n, n).copy_(at::tensor(prompts[b], at::kLong));
    seen[b].narrow(0, T0 - n, n).fill_(1);
  }
  ids = ids.to(dev);
  seen = seen.to(dev);

  // Per layer, the keys and values of every position so far: [1, B, T, H].
  std::vector<at::Tensor> K(cfg.layers), V(cfg.layers);
  // Logits [B, V] at the last position of `step_ids` after appending its keys and values to the cache.
  auto forward = [&](const at::Tensor& step_ids, const AttnMask& mask) {
    at::Tensor x = embed_forward(cfg, outer, plain, step_ids, mask);
    model.visit_blocks([&](int64_t l, const BlockWeights& w) {
      const AttentionFn cached = [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
        K[l] = K[l].defined() ? at::cat({K[l], k}, 2) : k;
        V[l] = V[l].defined() ? at::cat({V[l], v}, 2) : v;
        return attention(q, K[l], V[l], cfg.heads, mask);
      };
      x = block_forward(cfg, w, l, x, mask, plain, nullptr, &cached);
    });
    at::Tensor h = final_forward(cfg, outer, plain, x);
    const int64_t T = step_ids.size(1);
    at::Tensor rows = at::arange(B, at::TensorOptions().dtype(at::kLong).device(dev)) * T + (T - 1);
    return logits_at(cfg, outer, plain, h, rows)[0];
  };

  at::Tensor logits = forward(ids, make_attn_mask(seen));
  for (;;) {
    if (opt.keep_logits) out.logits.push_back(logits.to(at::kCPU));
    const at::Tensor next = logits.argmax(-1).to(at::kCPU);
    const auto nx = next.accessor<int64_t, 1>();
    std::vector<int64_t> feed(B, opt.pad_id), live(B, 0);
    any = false;
    for (int64_t b = 0; b < B; ++b) {
      if (!active[b]) continue;
      const int64_t t = nx[b];
      if (std::find(opt.stop_ids.begin(), opt.stop_ids.end(), t) != opt.stop_ids.end()) {
        out.stopped[b] = true;
        active[b] = false;
        continue;
      }
      out.tokens[b].push_back(t);
      if (static_cast<int64_t>(out.tokens[b].size()) >= limit[b]) {
        active[b] = false;
        continue;
      }
      feed[b] = t;
      live[b] = 1;
      any = true;
    }
    if (!any) break;
    seen = at::cat({seen, at::tensor(live, at::kLong).view({B, 1}).to(dev)}, 1);
    logits = forward(at::tensor(feed, at::kLong).view({B, 1}).to(dev), step_mask(seen));
  }
  return out;
}

}  // namespace zo2
