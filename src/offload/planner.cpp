#include "offload/planner.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "common/error.h"
#include "offload/block_layout.h"
#include "offload/low_bit.h"

namespace zo2 {

namespace {
// Device memory outside the allocator's live tensors: CUDA context, cuBLAS/cuDNN workspaces, memory the
// caching allocator holds in reserve. Measured on an H100 (LibTorch 2.11, CUDA 13, expandable segments)
// as NVML-used minus allocator peak with every block streamed: 0.83-0.98 GB over OPT-1.3B..30B and the
// OPT-175B block shape (docs/memory.md; 0.90-1.12 GB before the cuBLASLt layers); the middle of that.
constexpr double kContextBytes = 0.92e9;
constexpr double kLogitsChunk = 128.0 * (1 << 20);   // logits of one head chunk (opt_forward.cpp)
constexpr double kMatmulWorkspace = 32.0 * (1 << 20);  // the linear layers' cuBLASLt workspace (gemm_lt.h)

double esize(at::ScalarType t) { return static_cast<double>(c10::elementSize(t)); }
}  // namespace

std::vector<int64_t> spread_layers(int64_t layers, int64_t count) {
  std::vector<int64_t> out;
  count = std::clamp<int64_t>(count, 0, layers);
  for (int64_t i = 0; i < count; ++i) out.push_back((2 * i + 1) * layers / (2 * count));
  return out;
}

Plan make_plan(const PlanInput& in) {
  ZO2_REQUIRE(in.batch >= 1 && in.seq >= 1 && in.q >= 1 && in.prefetch >= 0,
              "plan: batch, sequence length and directions must be >= 1 and prefetch >= 0, got ", in.batch, ", ",
              in.seq, ", ", in.q, " and ", in.prefetch);
  const OptConfig& c = in.cfg;
  Plan p;
  const double H = static_cast<double>(c.hidden), F = static_cast<double>(c.ffn), V = static_cast<double>(c.vocab_size),
               E = static_cast<double>(c.word_embed_dim), L = static_cast<double>(c.layers);
  const double nb = 2.0 * static_cast<double>(in.q), B = static_cast<double>(in.batch), T = static_cast<double>(in.seq);
  const double cs = esize(in.compute);
  p.block_bytes = BlockLayout::make(c, in.storage).bytes;

  auto add = [&](const std::string& what, double gpu, double host) {
    p.lines.push_back({what, gpu, host});
  };
  add("CUDA context, workspaces, allocator reserve", kContextBytes, 0);
  add("embeddings, final LayerNorm, head", static_cast<double>(c.outer_params()) * esize(in.storage), 0);
  const double max_matrix = static_cast<double>(c.largest_matrix());
  add("perturbed copies (scratch, 2 x largest matrix)", 2.0 * max_matrix * cs, 0);
  if (in.lookahead)
    add("copies written ahead (2 x largest block matrix)", 2.0 * static_cast<double>(c.largest_block_matrix()) * cs, 0);
  const double tokens = B * T;
  // Live activations inside a block: residual, LayerNorm out, q, k, v, attention out, fc1 out, and the
  // attention masks; the embedding rows of all branches; the head's chunk of logits (on a GPU one
  // fused kernel reads it: no fp32 log-softmax copy beside it); the linear layers' matmul workspace.
  const double act = nb * tokens * (7.0 * H + F) * cs + B * T * T * 5.0 + nb * B * T * T +
                     nb * tokens * E * cs + kLogitsChunk + kMatmulWorkspace;
  add("activations (2q branches) and head chunk", act, 0);
  double fixed = 0;
  for (const MemoryLine& m : p.lines) fixed += m.gpu_bytes;

  int64_t resident = c.layers;
  if (in.stream_all) {
    resident = 0;
  } else if (in.budget_gb > 0) {
    const double budget = in.budget_gb * 1e9;
    if (fixed + static_cast<double>(c.layers) * p.block_bytes > budget) {
      const int64_t slots = in.prefetch + 2;
      const double room = budget - fixed - static_cast<double>(slots) * p.block_bytes;
      resident = std::clamp<int64_t>(static_cast<int64_t>(room / p.block_bytes), 0, c.layers);
      p.fits = room >= 0;
    }
  }
  p.resident = spread_layers(c.layers, resident);
  p.streamed = c.layers - resident;
  p.slots = p.streamed > 0 ? std::min<int64_t>(p.streamed, in.prefetch + 2) : 0;
  add("resident blocks (" + std::to_string(resident) + ")", static_cast<double>(resident) * p.block_bytes, 0);
  add("block slots (" + std::to_string(p.slots) + ")", static_cast<double>(p.slots) * p.block_bytes, 0);
  if (in.low_bit_reads && p.streamed > 0) {
    const double low = static_cast<double>(LowBitLayout::make(BlockLayout::make(c, in.storage)).bytes);
    add("int8 read copies (" + std::to_string(p.streamed) + " host, " + std::to_string(p.slots) + " upload buffers)",
        static_cast<double>(p.slots) * low, static_cast<double>(p.streamed) * low);
  }
  const double streamed_bytes = static_cast<double>(p.streamed) * p.block_bytes;
  if (in.disk_gbps > 0 && p.streamed > 0) {  // the blocks live in the file; two pinned buffers per slot
    p.disk_bytes = streamed_bytes;
    add("disk tier staging buffers, pinned (2 x " + std::to_string(p.slots) + ")", 0,
        2.0 * static_cast<double>(p.slots) * p.block_bytes);
  } else {
    add("streamed blocks, pinned (" + std::to_string(p.streamed) + ")", 0, streamed_bytes);
  }
  for (const MemoryLine& m : p.lines) {
    p.gpu_bytes += m.gpu_bytes;
    p.host_bytes += m.host_bytes;
  }

  // Time: copies run on their own engines beside compute; the fused kernels move each weight once
  // in, once out and two perturbed copies per direction.
  ZO2_REQUIRE(in.writeback_every >= 1, "write-back interval must be >= 1, got ", in.writeback_every);
  const double up_ms = streamed_bytes / (in.h2d_gbps * 1e9) * 1e3;
  const double back_ms = streamed_bytes / static_cast<double>(in.writeback_every) / (in.d2h_gbps * 1e9) * 1e3;
  p.transfer_ms = std::max(up_ms, back_ms);
  p.transfer_link = up_ms >= back_ms ? Plan::Link::kH2D : Plan::Link::kD2H;
  if (p.disk_bytes > 0) {  // every block is read from the file each step (none cached: the tier is for > RAM)
    p.disk_ms = p.disk_bytes / (in.disk_gbps * 1e9) * 1e3;
    if (p.disk_ms >= p.transfer_ms) p.transfer_link = Plan::Link::kDisk;
    p.transfer_ms = std::max(p.transfer_ms, p.disk_ms);
  }
  const double block_params = static_cast<double>(c.block_params());
  const double flops = nb * (2.0 * block_params * L * tokens + 2.0 * B * T * T * H * L + 2.0 * V * E * tokens);
  p.compute_ms = flops / (in.tflops * 1e12) * 1e3;
  const double params = static_cast<double>(c.total_params());
  p.kernel_ms = params * (2.0 * esize(in.storage) + nb * cs) / (in.hbm_gbps * 1e9) * 1e3;
  p.step_ms = std::max(p.transfer_ms, p.compute_ms + p.kernel_ms);
  p.prefetch = in.prefetch;
  if (in.budget_gb > 0) p.fits = p.fits && p.gpu_bytes <= in.budget_gb * 1e9;
  // Writing copies ahead hides the fused kernels behind the matmuls, which pays where compute bounds
  // the step: when no block streams. Where blocks stream, the link bounds it and the memory is better
  // spent on one more resident block.
  if (in.lookahead && (p.streamed > 0 || !p.fits)) {
    PlanInput without = in;
    without.lookahead = false;
    return make_plan(without);
  }
  p.lookahead = in.lookahead;
  // A tight budget costs prefetch depth before it fails: one slot fewer is one block less on the GPU,
  // and two slots still overlap the next upload with the current block's compute.
  if (!p.fits && in.prefetch > 0 && p.streamed > 0) {
    PlanInput less = in;
    less.prefetch = in.prefetch - 1;
    Plan q = make_plan(less);
    if (q.fits) return q;
  }
  return p;
}

std::string format_plan(const PlanInput& in, const Plan& p) {
  std::ostringstream os;
  char buf[256];
  auto gb = [](double b) { return b / 1e9; };
  std::snprintf(buf, sizeof(buf), "plan for %s: %lld layers, block %.3f GB (%s), batch %lld x %lld tokens, q=%lld\n",
                in.cfg.name.c_str(), static_cast<long long>(in.cfg.layers), gb(p.block_bytes),
                std::string(c10::toString(in.storage)).c_str(), static_cast<long long>(in.batch),
                static_cast<long long>(in.seq), static_cast<long long>(in.q));
  os << buf;
  os << "  component                                           GPU (GB)   host (GB)\n";
  for (const MemoryLine& m : p.lines) {
    std::snprintf(buf, sizeof(buf), "  %-50s %9.2f %11.2f\n", m.what.c_str(), gb(m.gpu_bytes), gb(m.host_bytes));
    os << buf;
  }
  std::snprintf(buf, sizeof(buf), "  %-50s %9.2f %11.2f\n", "total", gb(p.gpu_bytes), gb(p.host_bytes));
  os << buf;
  // The link that bounds the transfer: uploads, the write-backs (1/N of the blocks), or the disk.
  char link[64];
  switch (p.transfer_link) {
    case Plan::Link::kH2D: std::snprintf(link, sizeof(link), "H2D at %.1f GB/s", in.h2d_gbps); break;
    case Plan::Link::kD2H:
      std::snprintf(link, sizeof(link), "D2H of 1/%lld at %.1f GB/s", static_cast<long long>(in.writeback_every),
                    in.d2h_gbps);
      break;
    case Plan::Link::kDisk: std::snprintf(link, sizeof(link), "disk reads at %.1f GB/s", in.disk_gbps); break;
  }
  std::snprintf(buf, sizeof(buf),
                "  predicted step: %.1f ms = max(transfer %.1f ms, %s; compute %.1f ms at %.0f TFLOP/s + "
                "kernels %.1f ms)\n",
                p.step_ms, p.transfer_ms, link, p.compute_ms, in.tflops, p.kernel_ms);
  os << buf;
  if (p.disk_bytes > 0) {
    std::snprintf(buf, sizeof(buf), "  disk tier: %.2f GB of blocks in the --offload-dir file, read in %.1f ms at %.1f GB/s\n",
                  gb(p.disk_bytes), p.disk_ms, in.disk_gbps);
    os << buf;
  }
  if (p.prefetch != in.prefetch)
    os << "  prefetch lowered from " << in.prefetch << " to " << p.prefetch << " to fit the "
       << in.budget_gb << " GB budget\n";
  if (!p.fits) os << "  WARNING: the budget is smaller than the parts that must stay on the GPU\n";
  return os.str();
}

}  // namespace zo2
