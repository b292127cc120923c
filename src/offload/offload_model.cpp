#include "offload/offload_model.h"

#include <algorithm>

#include "common/error.h"
#include "zo/perturbation.h"

namespace zo2 {

OffloadModel::OffloadModel(OptConfig cfg, OuterWeights outer, HostStore store, const at::Device& device,
                           OffloadOptions opt)
    : cfg_(std::move(cfg)), outer_(std::move(outer)), store_(std::move(store)), device_(device), opt_(std::move(opt)),
      resident_(cfg_.layers, false), resident_buf_(cfg_.layers), resident_w_(cfg_.layers), host_ready_(cfg_.layers),
      host_upto_(cfg_.layers, 0),
      compute_(Queue::current(device)), upload_(opt_.overlap ? Queue::side(device) : compute_),
      writeback_(opt_.overlap ? Queue::side(device) : compute_) {
  ZO2_REQUIRE(opt_.prefetch >= 0, "prefetch depth must be >= 0, got ", opt_.prefetch);
  ZO2_REQUIRE(opt_.writeback_every >= 1, "write-back interval must be >= 1, got ", opt_.writeback_every);
  const at::TensorOptions dev = at::TensorOptions().dtype(at::kByte).device(device_);
  for (int64_t l : opt_.resident) {
    ZO2_REQUIRE(l >= 0 && l < cfg_.layers, "resident layer ", l, " out of range (", cfg_.layers, " layers)");
    resident_[l] = true;
    resident_buf_[l] = at::empty({block_bytes()}, dev);
    resident_buf_[l].copy_(store_.buffer(l));
    resident_w_[l] = store_.layout().view(resident_buf_[l]);
    store_.release(l);
  }
  const int64_t streamed = std::count(resident_.begin(), resident_.end(), false);
  // A node-shared host copy has one writer per block and counts write-back passes across the node's
  // ranks (NodeShare), so every rank must run the same ones: lazy write-back would leave catching up
  // to sync_host, which saving runs on one rank only. Shared blocks are written back every update.
  for (int64_t l = 0; l < cfg_.layers; ++l)
    if (!resident_[l] && store_.shared(l)) opt_.writeback_every = 1;
  const int64_t n = std::min<int64_t>(streamed, opt_.prefetch + 2);
  for (int64_t s = 0; s < n; ++s) {
    slot_buf_.push_back(at::empty({block_bytes()}, dev));
    slot_w_.push_back(store_.layout().view(slot_buf_.back()));
  }
  slot_free_.resize(n);
  uploaded_.resize(n);
  computed_.resize(n);
  if (store_.file()) {
    for (int64_t s = 0; s < n; ++s) {
      file_up_.push_back(alloc_host(block_bytes(), device_.is_cuda()));
      file_wb_.push_back(alloc_host(block_bytes(), device_.is_cuda()));
    }
    file_up_free_.resize(n);
    file_wb_done_.resize(n);
    file_wb_layer_.assign(n, -1);
  }
  if (opt_.low_bit_reads) {
    low_layout_ = LowBitLayout::make(store_.layout());
    low_host_.resize(cfg_.layers);
    low_upto_.assign(cfg_.layers, -1);
    for (int64_t l = 0; l < cfg_.layers; ++l)
      if (!resident_[l]) low_host_[l] = alloc_host(low_layout_.bytes, device_.is_cuda());
    for (int64_t s = 0; s < n; ++s)
      low_slot_.push_back(at::empty({low_layout_.bytes}, at::TensorOptions().dtype(at::kByte).device(device_)));
  }
}

OffloadModel::Mode OffloadModel::read_mode() {
  if (!opt_.low_bit_reads) return Mode::kRead;
  // The int8 copies are made on the host from current host copies: write back what lags, let every
  // write-back and every upload of an older int8 copy finish, requantize the blocks that changed.
  sync_host();
  writeback_.synchronize();
  finish_file_writes();
  upload_.synchronize();
  for (int64_t l = 0; l < cfg_.layers; ++l) {
    if (resident_[l] || low_upto_[l] == host_upto_[l]) continue;
    if (NodeShare* share = store_.shared(l)) share->wait_current(l);
    quantize_block(store_.layout(), low_layout_, store_.block(l), low_host_[l]);
    low_upto_[l] = host_upto_[l];
  }
  return Mode::kReadLowBit;
}

void OffloadModel::note_update(const ParamSource& src) {
  auto* zp = dynamic_cast<const ZoParams*>(&src);
  if (!zp || zp->pending().empty() || (updates_ > 0 && zp->pending().key == last_key_)) return;
  history_.push_back(zp->pending());
  last_key_ = zp->pending().key;
  ++updates_;
}

void OffloadModel::catch_up(int64_t layer, BlockWeights& w, int64_t from, int64_t to) {
  for (int64_t u = from; u < to; ++u) {
    const Update& up = history_.at(static_cast<size_t>(u - history_base_));
    for (int s = 0; s < BlockWeights::kSlots; ++s)
      update_perturb(w.slot(s), block_param_id(layer, s), &up, nullptr, 0, 0, at::Tensor());
  }
}

void OffloadModel::pass(const std::function<bool(int64_t)>& want,
                        const std::function<void(int64_t, BlockWeights&)>& work, Mode mode,
                        const std::function<bool(int64_t)>& src_applies_latest) {
  std::vector<int64_t> streamed;  // layers of this pass that come through the slots
  for (int64_t l = 0; l < cfg_.layers; ++l)
    if (want(l) && !resident_[l]) streamed.push_back(l);
  const int64_t nslots = slots(), base = cursor_;
  cursor_ += static_cast<int64_t>(streamed.size());
  auto slot = [&](int64_t k) { return static_cast<size_t>((base + k) % std::max<int64_t>(1, nslots)); };
  struct Timed {
    Marker a, b;
  };
  std::vector<Timed> up_t, comp_t, wb_t;
  if (opt_.timing) {
    up_t.resize(streamed.size());
    comp_t.resize(streamed.size());
    wb_t.resize(streamed.size());
  }

  // Whether this pass writes block l back: a flush writes every lagging copy; training writes once the
  // copy lags writeback_every updates, or earlier on the block's turn (staggered across blocks). The
  // same on every rank, as the node-shared store's protocol needs.
  auto writes_back = [&](int64_t l) {
    const int64_t lag = updates_ - host_upto_[l];
    if (mode == Mode::kFlush) return lag > 0;
    if (mode != Mode::kTrain) return false;
    return lag >= opt_.writeback_every || (lag > 0 && (updates_ + l) % opt_.writeback_every == 0);
  };

  int64_t next = 0;  // next streamed block to upload
  auto pump = [&](int64_t upto) {
    for (; next < static_cast<int64_t>(streamed.size()) && next <= upto; ++next) {
      const size_t s = slot(next);
      const int64_t l = streamed[next];
      const bool low = mode == Mode::kReadLowBit;
      NodeShare* share = low ? nullptr : store_.shared(l);  // the int8 copy is this rank's own
      upload_.wait(slot_free_[s]);   // the slot's previous block is written back (or done)
      upload_.wait(host_ready_[l]);  // this block's last write-back reached the host
      if (share) share->before_upload(l);  // ... also when another rank of the node wrote it
      if (opt_.timing) upload_.record(up_t[next].a, true);
      if (low) {
        upload_.copy(low_slot_[s], low_host_[l]);
      } else if (store_.file()) {
        finish_file_writes(l);          // its newest version may still be in a write-back buffer
        file_up_free_[s].synchronize();  // the buffer's previous upload has left it
        store_.file()->read(l, file_up_[s]);
        upload_.copy(slot_buf_[s], file_up_[s]);
        upload_.record(file_up_free_[s]);
      } else {
        upload_.copy(slot_buf_[s], store_.buffer(l));
      }
      if (opt_.timing) upload_.record(up_t[next].b, true);
      upload_.record(uploaded_[s]);
      if (share) share->after_upload(l, upload_, writes_back(l));
      if (!low && next + 1 < static_cast<int64_t>(streamed.size())) store_.will_need(streamed[next + 1]);
      times_.uploaded_bytes += low ? low_layout_.bytes : block_bytes();
    }
  };
  pump(nslots - 1);

  int64_t k = 0;  // streamed blocks computed so far
  for (int64_t l = 0; l < cfg_.layers; ++l) {
    if (!want(l)) continue;
    if (resident_[l]) {
      work(l, resident_w_[l]);
      continue;
    }
    const size_t s = slot(k);
    compute_.wait(uploaded_[s]);
    if (opt_.timing) compute_.record(comp_t[k].a, true);
    if (mode == Mode::kReadLowBit) dequantize_block(store_.layout(), low_layout_, low_slot_[s], slot_w_[s]);
    // The host copy may lag: re-apply the updates it misses (all but the newest when the work
    // applies that one itself).
    catch_up(l, slot_w_[s], host_upto_[l], updates_ - (updates_ > 0 && src_applies_latest(l) ? 1 : 0));
    work(l, slot_w_[s]);
    if (opt_.timing) compute_.record(comp_t[k].b, true);
    NodeShare* share = store_.shared(l);
    const bool write_back = writes_back(l);
    if (write_back && store_.writer(l)) {
      if (share) share->before_writeback(l);  // no rank of the node still uploads the old version
      compute_.record(computed_[s]);
      writeback_.wait(computed_[s]);
      if (opt_.timing) writeback_.record(wb_t[k].a, true);
      if (store_.file()) {
        if (file_wb_layer_[s] >= 0) finish_file_write(s);
        writeback_.copy(file_wb_[s], slot_buf_[s]);
        writeback_.record(file_wb_done_[s]);
        file_wb_layer_[s] = l;  // goes into the file when the buffer is needed again or the host reads
      } else {
        writeback_.copy(store_.buffer(l), slot_buf_[s]);
      }
      if (opt_.timing) writeback_.record(wb_t[k].b, true);
      writeback_.record(host_ready_[l]);
      writeback_.record(slot_free_[s]);
      if (share) share->after_writeback(l, writeback_);
      times_.written_bytes += block_bytes();
    } else {
      compute_.record(slot_free_[s]);  // read only, or another rank of the node writes the block back
      if (write_back) share->after_writeback(l, compute_);
    }
    if (write_back) host_upto_[l] = updates_;  // by this rank or the block's owner on the node
    ++k;
    pump(k - 1 + nslots);  // into the slot this block just left
  }
  // Forget updates every host copy has.
  int64_t oldest = updates_;
  for (int64_t l = 0; l < cfg_.layers; ++l)
    if (!resident_[l]) oldest = std::min(oldest, host_upto_[l]);
  while (history_base_ < oldest) {
    history_.erase(history_.begin());
    ++history_base_;
  }
  if (opt_.timing) {
    for (size_t i = 0; i < streamed.size(); ++i) {
      times_.upload_ms += Marker::elapsed_ms(up_t[i].a, up_t[i].b);
      times_.compute_ms += Marker::elapsed_ms(comp_t[i].a, comp_t[i].b);
      if (wb_t[i].b.recorded()) times_.writeback_ms += Marker::elapsed_ms(wb_t[i].a, wb_t[i].b);
    }
    ++times_.passes;
  }
}

at::Tensor OffloadModel::logprobs(ParamSource& src, const Batch& batch) {
  note_update(src);
  auto* zp = dynamic_cast<ZoParams*>(&src);
  // A ZO forward's first touch of a block applies the newest update itself.
  auto applies = [&](int64_t l) { return zp && !zp->pending().empty() && !zp->touched(block_param_id(l, 0)); };
  at::Tensor x = embed_forward(cfg_, outer_, src, batch.ids, batch.attn);
  pass([](int64_t) { return true; },
       [&](int64_t l, BlockWeights& w) { x = block_forward(cfg_, w, l, x, batch.attn, src); },
       src.writes_weights() ? Mode::kTrain : zp ? Mode::kRead : read_mode(), applies);  // ZO forwards: exact
  at::Tensor h = final_forward(cfg_, outer_, src, x);
  return target_logprobs(cfg_, outer_, src, h, batch.targets);
}

void OffloadModel::visit_blocks(const std::function<void(int64_t, const BlockWeights&)>& fn) {
  pass([](int64_t) { return true; }, [&](int64_t l, BlockWeights& w) { fn(l, w); }, read_mode(),
       [](int64_t) { return false; });
}

void OffloadModel::flush(ZoParams& src) {
  note_update(src);
  for (int id = 0; id < OuterWeights::kSlots; ++id)
    if (outer_.slot(id).defined()) src.flush(id, outer_.slot(id));
  auto untouched = [&](int64_t l) { return !src.touched(block_param_id(l, 0)); };
  auto applies = [&](int64_t l) { return !src.pending().empty() && untouched(l); };
  // Blocks this step has not touched (all of them after MezoEngine::flush) are streamed once: caught
  // up, updated, written back.
  pass(untouched,
       [&](int64_t l, BlockWeights& w) {
         for (int s = 0; s < BlockWeights::kSlots; ++s) src.flush(block_param_id(l, s), w.slot(s));
       },
       Mode::kFlush, applies);
}

void OffloadModel::finish_file_write(size_t j) {
  file_wb_done_[j].synchronize();
  store_.file()->write(file_wb_layer_[j], file_wb_[j]);
  file_wb_layer_[j] = -1;
}

void OffloadModel::finish_file_writes(int64_t layer) {
  for (size_t j = 0; j < file_wb_layer_.size(); ++j)
    if (file_wb_layer_[j] >= 0 && (layer < 0 || file_wb_layer_[j] == layer)) finish_file_write(j);
}

void OffloadModel::sync_host() {
  pass([&](int64_t l) { return !resident_[l] && host_upto_[l] < updates_; }, [](int64_t, BlockWeights&) {},
       Mode::kFlush, [](int64_t) { return false; });
}

std::vector<uint64_t> OffloadModel::checksums() {
  std::vector<uint64_t> out{outer_checksum(outer_)};
  for_each_block([&](int64_t, const BlockWeights& w) { out.push_back(block_checksum(w)); });
  return out;
}

void OffloadModel::for_each_block(const std::function<void(int64_t, const BlockWeights&)>& fn) {
  sync_host();
  writeback_.synchronize();
  finish_file_writes();
  for (int64_t l = 0; l < cfg_.layers; ++l) {
    if (!resident_[l]) {
      if (NodeShare* share = store_.shared(l)) share->wait_current(l);
      fn(l, store_.block(l));
      continue;
    }
    at::Tensor cpu = resident_buf_[l].to(at::kCPU);
    fn(l, store_.layout().view(cpu));
  }
}

}  // namespace zo2
