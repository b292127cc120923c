// Greedy generation by re-running the whole forward for every new token, one prompt at a time (no
// padding, no cache): the reference for train/generate.h in the unit and GPU tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "common/test_util.h"
#include "io/checkpoint.h"
#include "offload/offload_model.h"
#include "train/generate.h"

namespace zo2::test {

struct Reference {
  std::vector<int64_t> tokens;
  bool stopped = false;
  std::vector<at::Tensor> logits;  // [V] per step
};

// `ck` on any device, fp32.
inline Reference reference_generate(const Checkpoint& ck, std::vector<int64_t> ids, int64_t limit,
                                    const std::vector<int64_t>& stop) {
  PlainParams src(at::kFloat);
  const at::Device dev = ck.weights.outer.embed_tokens.device();
  Reference r;
  for (int64_t step = 0; step < limit; ++step) {
    const int64_t T = static_cast<int64_t>(ids.size());
    at::Tensor x = at::tensor(ids, at::kLong).view({1, T}).to(dev);
    at::Tensor h = decoder_forward(ck.cfg, ck.weights, src, x, make_attn_mask(at::ones({1, T}, x.options())));
    at::Tensor logits = logits_at(ck.cfg, ck.weights.outer, src, h, at::tensor({T - 1}, x.options()))[0][0].to(at::kCPU);
    r.logits.push_back(logits);
    const int64_t t = logits.argmax().item<int64_t>();
    if (std::find(stop.begin(), stop.end(), t) != stop.end()) {
      r.stopped = true;
      break;
    }
    r.tokens.push_back(t);
    ids.push_back(t);
  }
  return r;
}

inline std::vector<std::vector<int64_t>> prompts(int64_t vocab) {
  at::Generator g = at::detail::createCPUGenerator(7);
  std::vector<std::vector<int64_t>> out;
  for (int64_t n : {4, 9, 1, 6}) {
    at::Tensor t = at::randint(3, vocab, {n}, g, at::TensorOptions().dtype(at::kLong));
    std::vector<int64_t> p = {2};  // BOS
    p.insert(p.end(), t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n - 1);
    out.push_back(p);
  }
  return out;
}

// The model as the offload pipeline holds it: every block streamed from the host store.
inline std::unique_ptr<ZoModel> streamed(const Checkpoint& ck, const at::Device& device) {
  std::vector<int64_t> all;
  for (int64_t l = 0; l < ck.cfg.layers; ++l) all.push_back(l);
  HostStore store(ck.cfg, at::kFloat, all, device.is_cuda());
  for (int64_t l = 0; l < ck.cfg.layers; ++l)
    for (int s = 0; s < BlockWeights::kSlots; ++s) store.block(l).slot(s).copy_(ck.weights.blocks[l].slot(s).to(at::kCPU));
  return std::make_unique<OffloadModel>(ck.cfg, ck.weights.outer, std::move(store), device, OffloadOptions{});
}

// generate() on `model` equals the reference on `ck` (the same weights): ids exactly, logits within `tol`.
inline void check_generate(ZoModel& model, const Checkpoint& ck, const GenerateOptions& opt, double tol = 1e-5) {
  const std::vector<std::vector<int64_t>> ps = prompts(ck.cfg.vocab_size);
  GenerateOptions o = opt;
  o.keep_logits = true;
  const Generated got = generate(model, ps, o);
  ASSERT_EQ(got.tokens.size(), ps.size());
  for (size_t b = 0; b < ps.size(); ++b) {
    SCOPED_TRACE("prompt " + std::to_string(b));
    const int64_t room = std::min(opt.max_length, ck.cfg.max_positions) - static_cast<int64_t>(ps[b].size());
    const Reference want = reference_generate(ck, ps[b], std::min(opt.max_new_tokens, room), opt.stop_ids);
    EXPECT_EQ(got.tokens[b], want.tokens);
    EXPECT_EQ(got.stopped[b], want.stopped);
    ASSERT_LE(want.logits.size(), got.logits.size());
    for (size_t s = 0; s < want.logits.size(); ++s) EXPECT_LT(rel_l2(got.logits[s][b], want.logits[s]), tol) << "step " << s;
  }
}

}  // namespace zo2::test
