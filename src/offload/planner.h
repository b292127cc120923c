// Residency planner and memory/time model: which blocks stay on the GPU under a memory budget, how much
// GPU and host memory each component takes, and the step time predicted from link bandwidth and FLOPs.
// Used by `zo2 plan` (any size up to OPT-175B, no GPU needed) and by `zo2 train --gpu-memory-budget`.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "model/opt_config.h"

namespace zo2 {

struct PlanInput {
  OptConfig cfg;
  at::ScalarType storage = at::kHalf;   // dtype of the stored weights
  at::ScalarType compute = at::kHalf;   // dtype of the forward
  int64_t batch = 1, seq = 2048;        // sequences per micro-batch, tokens per sequence
  int64_t q = 1;                        // directions: the forward runs 2q branches
  int64_t prefetch = 1;                 // slots = prefetch + 2 when anything streams
  double budget_gb = 0;                 // GPU memory budget (GB = 1e9 bytes); 0 = stream every block
  bool stream_all = false;              // ignore the budget: stream every block
  bool low_bit_reads = false;           // int8 copies for read-only passes (host) and their upload buffers
  bool lookahead = false;               // copies written ahead on a side stream (zo/zo_params.h), if no block streams
  double disk_gbps = 0;                 // > 0: disk tier (--offload-dir), blocks read from a file at this rate
  int64_t writeback_every = 1;          // a streamed block goes home every N updates: D2H carries 1/N of them
  // Machine model (defaults: the H100 of docs/PERFORMANCE.md)
  double h2d_gbps = 55.0, d2h_gbps = 55.0;  // pinned copies, GB/s
  double tflops = 500.0;                    // achieved dense 16-bit matmul rate
  double hbm_gbps = 2500.0;                 // achieved device memory bandwidth
};

struct MemoryLine {
  std::string what;
  double gpu_bytes = 0, host_bytes = 0;
};

struct Plan {
  std::vector<int64_t> resident;   // layers kept on the GPU (interleaved with the streamed ones)
  int64_t streamed = 0, slots = 0;
  int64_t prefetch = 1;            // the prefetch depth planned (lowered from the input's when only
                                   // that fits the budget)
  int64_t block_bytes = 0;
  std::vector<MemoryLine> lines;
  double gpu_bytes = 0, host_bytes = 0;
  double transfer_ms = 0, compute_ms = 0, kernel_ms = 0, step_ms = 0;
  double disk_bytes = 0, disk_ms = 0;  // disk tier: the blocks' file and its read time per step
  enum class Link { kH2D, kD2H, kDisk } transfer_link = Link::kH2D;  // what bounds transfer_ms
  bool fits = true;                // everything fits the budget (when there is one)
  bool lookahead = false;          // copies are written ahead (asked for, and no block streams)
};

Plan make_plan(const PlanInput& in);
std::string format_plan(const PlanInput& in, const Plan& plan);

// Evenly spread `count` of `layers` layers (so streamed blocks alternate with resident ones and the
// link never idles for long).
std::vector<int64_t> spread_layers(int64_t layers, int64_t count);

}  // namespace zo2
