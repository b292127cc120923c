// How the forward reads parameters: with a leading branch dimension nb, so one pass computes the
// unperturbed model (nb = 1) or all 2q perturbed copies of the zeroth-order step at once.
#pragma once

#include <ATen/ATen.h>

namespace zo2 {

class ParamSource {
 public:
  virtual ~ParamSource() = default;
  virtual int64_t branches() const = 0;
  // Parameter `id` (stored as `w`) as [nb, ...w.shape] in the compute dtype. A matrix may come back in
  // a scratch buffer that the next matrix request reuses, so the forward consumes each matrix before
  // asking for the next; vectors stay valid until the block ends.
  virtual at::Tensor get(int64_t id, const at::Tensor& w) = 0;
  // Rows `rows` (int64 [N]) of the embedding table `table` (parameter `id`) as [nb, N, dim]: only the
  // rows a batch uses are ever materialised.
  virtual at::Tensor rows(int64_t id, const at::Tensor& table, const at::Tensor& rows) = 0;
  // Called by the forward after the last parameter of a block (or of the outer layers) was consumed.
  virtual void end_block() {}
};

// The stored weights as they are (nb = 1), cast to the compute dtype when storage differs.
class PlainParams final : public ParamSource {
 public:
  explicit PlainParams(at::ScalarType compute_dtype) : dtype_(compute_dtype) {}
  int64_t branches() const override { return 1; }
  at::Tensor get(int64_t, const at::Tensor& w) override { return w.to(dtype_).unsqueeze(0); }
  at::Tensor rows(int64_t, const at::Tensor& table, const at::Tensor& rows) override {
    return at::embedding(table, rows).to(dtype_).unsqueeze(0);
  }

 private:
  at::ScalarType dtype_;
};

}  // namespace zo2
