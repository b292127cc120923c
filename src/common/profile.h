// Optional GPU time per phase of a step (ZO2_PROFILE=1): scopes record CUDA events around work on the
// current stream; report() waits for them and sums milliseconds per phase name. Off, a scope costs a
// branch. Phases must not nest.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>

namespace zo2 {

class PhaseScope {
 public:
  PhaseScope(const char* name, const at::Device& device);
  ~PhaseScope();
  PhaseScope(const PhaseScope&) = delete;
  PhaseScope& operator=(const PhaseScope&) = delete;

 private:
  int index_ = -1;
};

bool profiling_enabled();
void profile_reset();
// Summed milliseconds per phase since the last reset (waits for the recorded events).
std::map<std::string, double> profile_report();

}  // namespace zo2
