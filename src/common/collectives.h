// The collectives zeroth-order training needs: a handful of scalars per step. comm/ implements this
// over MPI (CPU) or NCCL (GPU); SingleProcess below is the one-process case. Nothing in src/ includes
// MPI or NCCL.
#pragma once

#include <cstdint>

namespace zo2 {

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  // In place, host values.
  virtual void allreduce_sum(double* values, int n) = 0;
  // recv holds n * world values, rank r's at [r * n, (r + 1) * n).
  virtual void allgather(const double* send, int n, double* recv) = 0;
  virtual void allgather_u64(const uint64_t* send, int n, uint64_t* recv) = 0;
  virtual void broadcast_u64(uint64_t* values, int n, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job (after a fatal error on this one).
  [[noreturn]] virtual void abort(int code) = 0;
  // Bytes this rank has sent through collectives so far (for the bytes-on-the-wire measurement).
  virtual uint64_t bytes_sent() const = 0;
};

class SingleProcess final : public Collectives {
 public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  void allreduce_sum(double*, int) override {}
  void allgather(const double* send, int n, double* recv) override {
    for (int i = 0; i < n; ++i) recv[i] = send[i];
  }
  void allgather_u64(const uint64_t* send, int n, uint64_t* recv) override {
    for (int i = 0; i < n; ++i) recv[i] = send[i];
  }
  void broadcast_u64(uint64_t*, int, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code) override;
  uint64_t bytes_sent() const override { return 0; }
};

}  // namespace zo2
