// How the forward reads parameters: with a leading branch dimension nb, so one pass computes the
// unperturbed model (nb = 1) or all 2q perturbed copies of the zeroth-order step at once.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <utility>
#include <vector>

namespace zo2 {

class ParamSource {
 public:
  using MatrixFn = std::function<void(int64_t first_branch, const at::Tensor& group)>;

  virtual ~ParamSource() = default;
  virtual int64_t branches() const = 0;
  // A vector parameter (bias, LayerNorm) as [nb, n] in the compute dtype.
  virtual at::Tensor vec(int64_t id, const at::Tensor& w) = 0;
  // A matrix parameter, handed to `fn` in consecutive branch groups [g, out, in] that cover all nb
  // branches. A group may live in scratch that the next call reuses: consume it inside `fn`. This is
  // what keeps perturbed copies to about one matrix of memory however many directions run.
  virtual void mat(int64_t id, const at::Tensor& w, const MatrixFn& fn) = 0;
  // Rows `rows` (int64 [N]) of the embedding table `table` (parameter `id`) as [nb, N, dim]: only the
  // rows a batch uses are materialised.
  virtual at::Tensor rows(int64_t id, const at::Tensor& table, const at::Tensor& rows) = 0;
  // The vector parameters (id, tensor) that the coming layers read with vec(): a source may write all
  // their copies in one pass. Only a hint.
  virtual void hint_vecs(const std::vector<std::pair<int64_t, at::Tensor>>& /*vecs*/) {}
  // The matrix pass after the coming one will read parameter `id` (tensor `w`): a source may prepare it
  // on another stream while the coming pass's matmul runs. Only a hint: any order of passes stays correct.
  virtual void hint_next(int64_t /*id*/, const at::Tensor& /*w*/) {}
  // Work started for a hinted pass that was not taken is ordered before what follows (before a block is
  // written back).
  virtual void settle() {}
  // True when reading parameters also changes them (a pending update is applied on first touch), so
  // streamed blocks must be written back.
  virtual bool writes_weights() const { return false; }
};

// The stored weights as they are (nb = 1), cast to the compute dtype where storage differs.
class PlainParams final : public ParamSource {
 public:
  explicit PlainParams(at::ScalarType compute_dtype) : dtype_(compute_dtype) {}
  int64_t branches() const override { return 1; }
  at::Tensor vec(int64_t, const at::Tensor& w) override { return w.to(dtype_).unsqueeze(0); }
  void mat(int64_t, const at::Tensor& w, const MatrixFn& fn) override { fn(0, w.to(dtype_).unsqueeze(0)); }
  at::Tensor rows(int64_t, const at::Tensor& table, const at::Tensor& rows) override {
    return at::embedding(table, rows).to(dtype_).unsqueeze(0);
  }

 private:
  at::ScalarType dtype_;
};

}  // namespace zo2
