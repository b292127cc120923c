#include "offload/node_share.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>

#include "common/error.h"
#include "common/poll.h"
#include "kernels/zo_kernels.h"

namespace zo2 {
namespace {

constexpr uint64_t kMagic = 0x7a6f32686f737431ull;  // "zo2host1"
constexpr size_t kPage = 4096;
// A wait for a peer's copy holds up this rank's pipeline: check often.
constexpr int kMaxNapUs = 50;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

struct Header {
  uint64_t magic, count, local_world, block_bytes;
};

// The counters follow the header: version[count], then done[count][local_world].
size_t counters_bytes(size_t count, int local_world) {
  return sizeof(Header) + sizeof(std::atomic<uint64_t>) * count * (1 + static_cast<size_t>(local_world));
}

static_assert(std::atomic<uint64_t>::is_always_lock_free, "counters in shared memory need lock-free atomics");

std::string errno_text() { return std::strerror(errno); }

}  // namespace

NodeShare::NodeShare(Collectives& comm, const NodeShareOptions& opt, const std::vector<int64_t>& layers,
                     int64_t block_bytes)
    : opt_(opt), block_bytes_(block_bytes) {
  ZO2_REQUIRE(opt.local_world >= 1 && opt.local_rank >= 0 && opt.local_rank < opt.local_world,
              "shared host store: local rank ", opt.local_rank, " of ", opt.local_world);
  ZO2_REQUIRE(block_bytes > 0, "shared host store: empty blocks");
  int64_t top = 0;
  for (int64_t l : layers) top = std::max(top, l + 1);
  slot_of_.assign(top, -1);
  for (int64_t l : layers) {
    ZO2_REQUIRE(l >= 0 && slot_of_[l] < 0, "shared host store: layer ", l, " listed twice or negative");
    slot_of_[l] = static_cast<int64_t>(count_++);
  }
  passes_.assign(count_, 0);
  stride_ = static_cast<int64_t>(round_up(block_bytes, kPage));
  data_at_ = round_up(counters_bytes(count_, opt.local_world), kPage);
  size_ = data_at_ + count_ * stride_;

  // One name per job, the same on every node: world rank 0's pid, the time and a random number.
  uint64_t token = 0;
  if (comm.rank() == 0) {
    std::random_device rd;
    token = kernels::splitmix64((static_cast<uint64_t>(getpid()) << 32) ^ rd() ^
                                static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  }
  comm.broadcast_u64(&token, 1, 0);
  char name[64];
  std::snprintf(name, sizeof(name), "/zo2-host-store-%016llx", static_cast<unsigned long long>(token));
  name_ = name;
  rng_ = kernels::splitmix64(token ^ static_cast<uint64_t>(comm.rank() + 1));

  // Local rank 0 creates and sizes the segment; every rank learns whether all nodes managed.
  std::string failure;
  if (opt.local_rank == 0) {
    const int fd = shm_open(name_.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) {
      failure = "shm_open(" + name_ + "): " + errno_text();
    } else {
      // posix_fallocate reserves the pages now: a /dev/shm too small fails here, not with SIGBUS later.
      const int e = posix_fallocate(fd, 0, static_cast<off_t>(size_));
      if (e != 0)
        failure = "cannot reserve " + std::to_string(size_ >> 20) + " MiB in /dev/shm for " + name_ + ": " +
                  std::strerror(e) + " (df /dev/shm; containers: --shm-size; or --share-host-store false)";
      close(fd);
      if (!failure.empty()) shm_unlink(name_.c_str());
    }
  }
  double failed = failure.empty() ? 0 : 1;
  comm.allreduce_sum(&failed, 1);
  ZO2_REQUIRE(failure.empty(), "shared host store: ", failure);
  ZO2_REQUIRE(failed == 0, "shared host store: local rank 0 of a node could not create the segment (its error says why)");

  std::string map_failure;
  const int fd = shm_open(name_.c_str(), O_RDWR, 0600);
  if (fd < 0) {
    map_failure = "shm_open(" + name_ + "): " + errno_text();
  } else {
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
      map_failure = "mmap of " + std::to_string(size_) + " bytes: " + errno_text();
    else
      base_ = static_cast<char*>(p);
  }
  if (base_ != nullptr && opt.local_rank == 0) {
    // The segment is zero-filled: the counters start at 0. Constructing the atomics makes that formal.
    auto* h = reinterpret_cast<Header*>(base_);
    *h = Header{kMagic, count_, static_cast<uint64_t>(opt.local_world), static_cast<uint64_t>(block_bytes)};
    for (size_t i = 0; i < count_ * (1 + static_cast<size_t>(opt.local_world)); ++i)
      new (base_ + sizeof(Header) + i * sizeof(std::atomic<uint64_t>)) std::atomic<uint64_t>(0);
  }
  failed = map_failure.empty() ? 0 : 1;
  comm.allreduce_sum(&failed, 1);  // also orders the header's initialisation before the checks below
  if (opt.local_rank == 0) shm_unlink(name_.c_str());  // mapped everywhere: gone with the last process
  comm.barrier();  // so that no rank returns while the name is still visible (a crash now leaks nothing)
  ZO2_REQUIRE(map_failure.empty(), "shared host store: ", map_failure);
  ZO2_REQUIRE(failed == 0, "shared host store: a rank could not map the segment (its error says why)");
  const auto* h = reinterpret_cast<const Header*>(base_);
  if (h->magic != kMagic || h->count != count_ || h->local_world != static_cast<uint64_t>(opt.local_world) ||
      h->block_bytes != static_cast<uint64_t>(block_bytes)) {
    munmap(base_, size_);
    throw_error("shared host store: segment ", name_, " was made for another layout (ranks disagree on the model?)");
  }
  if (opt.pin && count_ > 0) {
    try {
      register_host(base_ + data_at_, size_ - data_at_);
    } catch (...) {
      munmap(base_, size_);
      throw;
    }
    registered_ = true;
  }
}

NodeShare::~NodeShare() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();  // posts everything queued first: peers may be waiting for it
  }
  if (registered_) unregister_host(base_ + data_at_);
  if (base_ != nullptr) munmap(base_, size_);
}

bool NodeShare::has(int64_t layer) const {
  return layer >= 0 && layer < static_cast<int64_t>(slot_of_.size()) && slot_of_[layer] >= 0;
}

size_t NodeShare::index(int64_t layer) const {
  ZO2_REQUIRE(has(layer), "shared host store: block ", layer, " is not in the segment");
  return static_cast<size_t>(slot_of_[layer]);
}

at::Tensor NodeShare::buffer(int64_t layer) const {
  return at::from_blob(base_ + data_at_ + index(layer) * stride_, {block_bytes_},
                       at::TensorOptions().dtype(at::kByte));
}

std::atomic<uint64_t>& NodeShare::version(size_t i) const {
  return reinterpret_cast<std::atomic<uint64_t>*>(base_ + sizeof(Header))[i];
}

std::atomic<uint64_t>& NodeShare::done(size_t i, int r) const {
  return reinterpret_cast<std::atomic<uint64_t>*>(base_ + sizeof(Header))[count_ + i * opt_.local_world + r];
}

void NodeShare::jitter() {
  if (opt_.jitter_us <= 0) return;
  rng_ = kernels::splitmix64(rng_);
  std::this_thread::sleep_for(std::chrono::microseconds(rng_ % static_cast<uint64_t>(opt_.jitter_us + 1)));
}

void NodeShare::wait(const char* what, int64_t layer, const std::function<bool()>& done) {
  std::string failure;
  const bool in_time = poll_until(opt_.timeout_s, [&] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      failure = error_;
    }
    return !failure.empty() || done();
  }, kMaxNapUs);
  ZO2_REQUIRE(failure.empty(), "shared host store: ", failure);
  ZO2_REQUIRE(in_time, "shared host store: block ", layer, ": ", what, " did not happen within ", opt_.timeout_s,
              " s on local rank ", opt_.local_rank, " (a rank of this node died or hangs; ZO2_COLLECTIVE_TIMEOUT)");
}

void NodeShare::before_upload(int64_t layer) {
  jitter();
  const size_t i = index(layer);
  const uint64_t w = passes_[i];
  wait("the owner's write-back", layer, [&] { return version(i).load(std::memory_order_acquire) >= w; });
}

void NodeShare::after_upload(int64_t layer, const Queue& q, bool write_pass) {
  if (!write_pass) return;
  const size_t i = index(layer);
  const uint64_t w = passes_[i];
  std::atomic<uint64_t>* mine = &done(i, opt_.local_rank);
  post(q, [mine, w] { mine->store(w + 1, std::memory_order_release); });
}

void NodeShare::before_writeback(int64_t layer) {
  jitter();
  const size_t i = index(layer);
  const uint64_t w = passes_[i];
  wait("every rank's upload", layer, [&] {
    for (int r = 0; r < opt_.local_world; ++r)
      if (done(i, r).load(std::memory_order_acquire) < w + 1) return false;
    return true;
  });
}

void NodeShare::after_writeback(int64_t layer, const Queue& q) {
  const size_t i = index(layer);
  const uint64_t next = ++passes_[i];
  if (!owns(layer)) return;
  std::atomic<uint64_t>* v = &version(i);
  post(q, [v, next] { v->store(next, std::memory_order_release); });
}

void NodeShare::wait_current(int64_t layer) {
  const size_t i = index(layer);
  const uint64_t w = passes_[i];
  wait("the last write-back", layer, [&] { return version(i).load(std::memory_order_acquire) >= w; });
}

void NodeShare::post(const Queue& q, std::function<void()> store) {
  if (!q.is_cuda()) {  // the copy has already happened
    store();
    return;
  }
  Pending p;
  q.record(p.done);
  p.store = std::move(store);
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(p));
    if (!thread_.joinable()) thread_ = std::thread([this] { signal_loop(); });
  }
  cv_.notify_one();
}

void NodeShare::signal_loop() {
  for (;;) {
    Pending p;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and nothing left to post
      p = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      p.done.synchronize();
      p.store();
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu_);
      if (error_.empty()) error_ = std::string("waiting for a copy: ") + e.what();
    }
  }
}

}  // namespace zo2
