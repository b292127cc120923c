// What the MeZO step needs from a model: per-branch losses and a way to flush pending updates.
// ResidentModel holds the whole model on one device; the offload pipeline streams blocks.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <vector>

#include "model/loss.h"
#include "model/opt_config.h"
#include "model/opt_weights.h"
#include "zo/zo_params.h"

namespace zo2 {

class ZoModel {
 public:
  virtual ~ZoModel() = default;
  // log p(target) of every target of `batch` under every branch of `src`: [nb, N] fp32.
  virtual at::Tensor logprobs(ParamSource& src, const Batch& batch) = 0;
  // Loss of every branch: [nb] fp32 on the compute device.
  at::Tensor branch_losses(ParamSource& src, const Batch& batch) { return batch_loss(logprobs(src, batch), batch); }
  // Applies src's pending update to every parameter the current step has not touched.
  virtual void flush(ZoParams& src) = 0;
  virtual at::Device device() const = 0;
  virtual const OptConfig& config() const = 0;

  // For inference that is not a loss (generation with a KV cache): the embeddings, final LayerNorm and
  // head on device(), and fn(layer, weights) for every decoder block in layer order with its weights on
  // device() (streamed blocks are uploaded for it, and not written back; for forward passes only: with
  // low-bit reads an offloaded model hands over its int8-transferred weights).
  virtual const OuterWeights& outer_weights() const = 0;
  virtual void visit_blocks(const std::function<void(int64_t layer, const BlockWeights& w)>& fn) = 0;
  // Checksums of the stored weights: [0] the outer parameters, [1 + l] block l (replica checks).
  virtual std::vector<uint64_t> checksums() = 0;
};

uint64_t outer_checksum(const OuterWeights& w);
uint64_t block_checksum(const BlockWeights& w);

class ResidentModel final : public ZoModel {
 public:
  ResidentModel(OptConfig cfg, OptWeights weights) : cfg_(std::move(cfg)), w_(std::move(weights)) {}
  at::Tensor logprobs(ParamSource& src, const Batch& batch) override;
  void flush(ZoParams& src) override;
  at::Device device() const override { return w_.outer.embed_tokens.device(); }
  const OptConfig& config() const override { return cfg_; }
  const OuterWeights& outer_weights() const override { return w_.outer; }
  void visit_blocks(const std::function<void(int64_t, const BlockWeights&)>& fn) override;
  std::vector<uint64_t> checksums() override;
  OptWeights& weights() { return w_; }

 private:
  OptConfig cfg_;
  OptWeights w_;
};

}  // namespace zo2
