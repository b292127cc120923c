// ZO2's schedule (docs/offload.md): embeddings, final LayerNorm and head stay on the GPU; decoder
// blocks live in the host store and stream through a fixed pool of GPU slots on their own queue while
// the previous block computes; every perturbed forward of the step runs while a block is resident (the
// branch dimension); the pending update is fused into the first pass over each block; updated blocks
// stream back on a third queue. Queues are ordered by markers (CUDA events), never by host waits.
// Blocks listed as resident stay on the GPU and are interleaved with the streamed ones.
#pragma once

#include <functional>
#include <vector>

#include "common/device_queue.h"
#include "offload/host_store.h"
#include "offload/low_bit.h"
#include "zo/zo_model.h"

namespace zo2 {

struct OffloadOptions {
  int64_t prefetch = 1;           // streamed blocks in flight beyond the computing one: slots = prefetch + 2
  bool overlap = true;            // false: the same schedule on one queue (reference for tests)
  std::vector<int64_t> resident;  // layers that stay on the GPU
  bool timing = false;            // measure per-queue busy time (benchmarks)
  // Write a streamed block back every this many updates (staggered over the layers); in between the
  // host copy is stale and the missed updates are re-applied after upload (same kernel, same bits).
  // Saves PCIe write-back traffic, which otherwise slows the uploads sharing the link.
  int64_t writeback_every = 1;
  // Read-only passes (evaluation, generation) upload streamed blocks in int8 with per-row scales
  // (offload/low_bit.h): a half (fp16/bf16) or a quarter (fp32) of the bytes; training is unaffected.
  bool low_bit_reads = false;
};

struct QueueTimes {
  double upload_ms = 0, compute_ms = 0, writeback_ms = 0;
  int64_t uploaded_bytes = 0, written_bytes = 0;
  int64_t passes = 0;
};

class OffloadModel final : public ZoModel {
 public:
  // `outer` lives on `device`; `store` holds every block; resident layers move to the device.
  OffloadModel(OptConfig cfg, OuterWeights outer, HostStore store, const at::Device& device, OffloadOptions opt);

  at::Tensor logprobs(ParamSource& src, const Batch& batch) override;
  void flush(ZoParams& src) override;
  at::Device device() const override { return device_; }
  const OptConfig& config() const override { return cfg_; }
  const OuterWeights& outer_weights() const override { return outer_; }
  void visit_blocks(const std::function<void(int64_t, const BlockWeights&)>& fn) override;
  std::vector<uint64_t> checksums() override;

  const OuterWeights& outer() const { return outer_; }
  bool resident(int64_t layer) const { return resident_[layer]; }
  int64_t slots() const { return static_cast<int64_t>(slot_buf_.size()); }
  int64_t block_bytes() const { return store_.layout().bytes; }
  // Brings every lagging host copy up to date (lazy write-back).
  void sync_host();
  // Every block as CPU tensors (host buffer, or a copy of a resident block), in layer order; current.
  void for_each_block(const std::function<void(int64_t layer, const BlockWeights& cpu)>& fn);
  // Busy time per queue since the last reset (needs OffloadOptions::timing).
  QueueTimes times() const { return times_; }
  void reset_times() { times_ = QueueTimes{}; }
  // Per-queue timing costs a host wait per pass: only for measurements.
  void set_timing(bool on) { opt_.timing = on; }

 private:
  enum class Mode { kRead, kReadLowBit, kTrain, kFlush };
  // Runs `work` on each layer `want` accepts, in order, with its weights on the device: resident
  // blocks in place, streamed ones through the slots. kRead never writes back; kTrain writes a block
  // back when it is writeback_every updates ahead of its host copy; kFlush whenever it is ahead.
  // `src_applies_latest(l)`: the work itself applies the newest recorded update to layer l (a ZO
  // forward's first touch), so the catch-up after upload stops one short.
  void pass(const std::function<bool(int64_t)>& want, const std::function<void(int64_t, BlockWeights&)>& work,
            Mode mode, const std::function<bool(int64_t)>& src_applies_latest);
  // Records the pending update of `src` (if new) in the history of updates not yet in every host copy.
  void note_update(const ParamSource& src);
  // Applies history updates [from, to) to block `layer` (in a slot) with the update-only kernel.
  void catch_up(int64_t layer, BlockWeights& w, int64_t from, int64_t to);
  // The mode of a pass that does not write: kReadLowBit (after bringing the int8 copies up to date) when
  // low_bit_reads is on, else kRead.
  Mode read_mode();
  // Disk tier: copies the block written back through staging buffer j into the file (waiting for the
  // copy to reach the buffer); for one layer, or every pending one (before the host reads the store).
  void finish_file_write(size_t j);
  void finish_file_writes(int64_t layer = -1);

  OptConfig cfg_;
  OuterWeights outer_;
  HostStore store_;
  at::Device device_;
  OffloadOptions opt_;
  std::vector<bool> resident_;
  std::vector<at::Tensor> resident_buf_;
  std::vector<BlockWeights> resident_w_;
  std::vector<at::Tensor> slot_buf_;
  std::vector<BlockWeights> slot_w_;
  std::vector<Marker> slot_free_, uploaded_, computed_;
  std::vector<Marker> host_ready_;  // per layer: its last write-back finished
  int64_t cursor_ = 0;              // next slot, round robin across passes
  std::vector<Update> history_;     // updates history_base_ .. updates_ - 1
  int64_t history_base_ = 0;
  int64_t updates_ = 0;             // updates recorded so far
  uint64_t last_key_ = 0;
  std::vector<int64_t> host_upto_;  // per layer: the host copy holds updates [0, host_upto_)
  Queue compute_, upload_, writeback_;
  // low_bit_reads: per streamed layer the int8 host copy and the host version it was made from (-1:
  // none); per slot the device buffer it is uploaded into before expanding into the slot.
  LowBitLayout low_layout_;
  std::vector<at::Tensor> low_host_, low_slot_;
  std::vector<int64_t> low_upto_;
  // Disk tier (store_.file()): per slot a pinned buffer the block is read into before its upload and
  // one its write-back lands in before it goes into the file, the markers that free them, and the layer
  // whose write-back waits in each (-1: none). Pageable, memory-mapped pages would make the driver
  // stage every copy through its own buffers with the host waiting.
  std::vector<at::Tensor> file_up_, file_wb_;
  std::vector<Marker> file_up_free_, file_wb_done_;
  std::vector<int64_t> file_wb_layer_;
  QueueTimes times_;
};

}  // namespace zo2
