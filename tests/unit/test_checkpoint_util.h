// Shared by the trajectory, checkpoint and resume tests: a tiny OPT, language-modelling examples, and
// bitwise comparison of the stored weights of any model.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/test_util.h"
#include "data/example.h"
#include "offload/offload_model.h"
#include "zo/init.h"
#include "zo/zo_model.h"

namespace zo2::test {

inline OptConfig ckpt_config() {
  OptConfig c;
  c.name = "ckpt-test";
  c.vocab_size = 48;
  c.hidden = 16;
  c.layers = 3;
  c.heads = 2;
  c.ffn = 32;
  c.max_positions = 32;
  c.word_embed_dim = 16;
  return c;
}

// `n` language-modelling examples of 5..12 random tokens.
inline std::vector<Example> lm_examples(const OptConfig& c, int n, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  std::vector<Example> ex(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    at::Tensor ids = at::randint(3, c.vocab_size, {5 + i % 8}, g, at::TensorOptions().dtype(at::kLong));
    ex[i].candidates.push_back({std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel()), 1});
  }
  return ex;
}

inline Batch lm_batch(const std::vector<Example>& ex, int64_t first, int64_t count) {
  std::vector<const Example*> p;
  for (int64_t i = 0; i < count; ++i) p.push_back(&ex[static_cast<size_t>((first + i) % static_cast<int64_t>(ex.size()))]);
  return make_batch(p, BatchOptions{});
}

// A streamed model holding `w` (any device): blocks in the host store (pinned when `device` is CUDA),
// the outer weights on `device`.
inline std::unique_ptr<OffloadModel> streamed_model(const OptConfig& c, const OptWeights& w, at::ScalarType storage,
                                                    const at::Device& device, const OffloadOptions& opt) {
  std::vector<int64_t> all;
  for (int64_t l = 0; l < c.layers; ++l) all.push_back(l);
  HostStore store(c, storage, all, device.is_cuda());
  for (int64_t l = 0; l < c.layers; ++l)
    for (int s = 0; s < BlockWeights::kSlots; ++s) store.block(l).slot(s).copy_(w.blocks[l].slot(s));
  OuterWeights outer;
  for (int id = 0; id < OuterWeights::kSlots; ++id)
    if (w.outer.slot(id).defined()) outer.slot(id) = w.outer.slot(id).to(device, storage, false, /*copy=*/true);
  return std::make_unique<OffloadModel>(c, std::move(outer), std::move(store), device, opt);
}

// A copy of every stored weight of `m` as a CPU tensor, in parameter-id order (outer, then blocks).
inline std::vector<at::Tensor> stored_weights(ZoModel& m) {
  std::vector<at::Tensor> out;
  if (auto* r = dynamic_cast<ResidentModel*>(&m)) {
    for_each_param(r->config(), r->weights(), [&](const ParamInfo&, at::Tensor& t) { out.push_back(t.to(at::kCPU, false, /*copy=*/true)); });
    return out;
  }
  auto* o = dynamic_cast<OffloadModel*>(&m);
  for (int id = 0; id < OuterWeights::kSlots; ++id)
    if (o->outer().slot(id).defined()) out.push_back(o->outer().slot(id).to(at::kCPU, false, /*copy=*/true));
  o->for_each_block([&](int64_t, const BlockWeights& b) {
    for (int s = 0; s < BlockWeights::kSlots; ++s) out.push_back(b.slot(s).clone());
  });
  return out;
}

// Same bytes, tensor by tensor (so -0 and +0 differ, unlike at::equal).
inline ::testing::AssertionResult same_bits(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << a.size() << " vs " << b.size() << " tensors";
  for (size_t i = 0; i < a.size(); ++i) {
    const at::Tensor x = a[i].contiguous(), y = b[i].contiguous();
    if (x.scalar_type() != y.scalar_type() || x.sizes() != y.sizes() ||
        std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) != 0)
      return ::testing::AssertionFailure() << "tensor " << i << " differs (" << x.sizes() << " " << x.scalar_type() << ")";
  }
  return ::testing::AssertionSuccess();
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

}  // namespace zo2::test
