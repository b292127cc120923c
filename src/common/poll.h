// The wait loop behind every collective (comm/) and the node-shared host store (offload/): poll for
// completion against a deadline instead of blocking, so that a rank whose peer hangs or died ends the
// job instead of waiting forever.
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>

namespace zo2 {

// Calls done() until it returns true (-> true) or `timeout_s` passes (-> false). Spins briefly, then
// sleeps a little longer each round (up to `max_nap_us`) so waiting ranks leave the cores to the
// others (CI runs 3 ranks on 2 cores); a few scalars per training step make the added latency
// irrelevant. Waits inside the block pipeline pass a shorter nap.
template <class Done>
bool poll_until(double timeout_s, Done&& done, int max_nap_us = 1000) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::duration_cast<clock::duration>(
                                           std::chrono::duration<double>(timeout_s));
  constexpr int kSpins = 200;
  auto nap = std::chrono::microseconds(10);
  for (int i = 0;; ++i) {
    if (done()) return true;
    if (clock::now() > deadline) return false;
    if (i < kSpins) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(nap);
      nap = std::min(nap * 2, std::chrono::microseconds(max_nap_us));
    }
  }
}

}  // namespace zo2
