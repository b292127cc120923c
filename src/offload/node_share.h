// One host copy of the streamed blocks per node, shared by the ranks on it (docs/multi-node.md,
// "Shared host store"). Every rank holds bitwise-identical weights (each applies the same update), so
// one copy can serve them all: a POSIX shared-memory segment, page-locked in each rank with
// cudaHostRegister. Block l is written back by its owner only (local rank l % local ranks); the others
// drop their updated copy.
//
// Ordering, per block, with counters in the segment: version = write-backs completed; done[r] = the
// write-back passes in which local rank r has finished uploading the block. Every rank counts the
// write-back passes it has run over the block (w). All ranks run the same write-back passes (training
// steps and flushes), but not necessarily the same read-only passes (evaluation shards differ), so
// only the upload of a write-back pass is reported -- it is a rank's last read of the old version,
// and its earlier uploads, on the same queue, have completed before it. Then
//   before any upload:                 wait until version >= w       (the last write-back has landed)
//   after the upload of a write pass:  done[me] = w + 1             (posted once the copy completed)
//   owner, before writing:             wait until every done[r] >= w + 1 (nobody reads the old version)
//   owner, after writing:              version = w + 1              (posted once the copy completed)
// and w += 1 per write-back pass on every rank. "Posted once the copy completed": on a GPU a side
// thread waits for the copy's event and then stores the counter; on the CPU copies are synchronous
// and the store follows at once. Waits poll against a deadline and throw zo2::Error.
#pragma once

#include <ATen/ATen.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/collectives.h"
#include "common/device_queue.h"

namespace zo2 {

struct NodeShareOptions {
  int local_rank = 0;
  int local_world = 1;     // ranks on this node (all of them call the constructor)
  bool pin = false;        // page-lock the segment in this process (CUDA)
  double timeout_s = 300;  // longest wait for a peer's upload or write-back
  int64_t jitter_us = 0;   // tests: random sleeps of up to this before each protocol step
};

class NodeShare {
 public:
  // Collective over every rank of `comm`: maps one segment per node for `layers` blocks of
  // `block_bytes` (local rank 0 creates it, all map it, then the name is unlinked, so the memory goes
  // away with the last process). Throws zo2::Error on every rank when a node cannot create it.
  NodeShare(Collectives& comm, const NodeShareOptions& opt, const std::vector<int64_t>& layers, int64_t block_bytes);
  ~NodeShare();
  NodeShare(const NodeShare&) = delete;
  NodeShare& operator=(const NodeShare&) = delete;

  bool has(int64_t layer) const;
  at::Tensor buffer(int64_t layer) const;  // uint8 [block_bytes] inside the segment
  bool owns(int64_t layer) const { return layer % opt_.local_world == opt_.local_rank; }
  int64_t segment_bytes() const { return static_cast<int64_t>(size_); }
  const std::string& name() const { return name_; }

  // The protocol (above), called by OffloadModel around its copies; `q` is the queue of the copy.
  void before_upload(int64_t layer);
  void after_upload(int64_t layer, const Queue& q, bool write_pass);
  void before_writeback(int64_t layer);              // owner only
  void after_writeback(int64_t layer, const Queue& q);  // every rank; only the owner posts
  // Before reading a block on the host (checksums, saving): its last write-back has landed.
  void wait_current(int64_t layer);

 private:
  size_t index(int64_t layer) const;
  std::atomic<uint64_t>& version(size_t i) const;
  std::atomic<uint64_t>& done(size_t i, int r) const;
  // Runs `store` once `q` has reached this point.
  void post(const Queue& q, std::function<void()> store);
  void wait(const char* what, int64_t layer, const std::function<bool()>& done);
  void jitter();
  void signal_loop();

  NodeShareOptions opt_;
  std::vector<int64_t> slot_of_;  // layer -> index in the segment, -1 when not shared
  int64_t block_bytes_ = 0, stride_ = 0;
  size_t count_ = 0;
  std::string name_;
  char* base_ = nullptr;
  size_t size_ = 0, data_at_ = 0;
  bool registered_ = false;
  std::vector<uint64_t> passes_;  // write-back passes this rank ran over each shared block (w)
  uint64_t rng_ = 0;

  // Side thread that posts counters once a GPU copy completes (CUDA queues only).
  struct Pending {
    Marker done;
    std::function<void()> store;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stop_ = false;
  std::string error_;  // a failure on the side thread, rethrown by the next wait
  std::thread thread_;
};

}  // namespace zo2
