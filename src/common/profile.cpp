#include "common/profile.h"

#include <cstdlib>
#include <vector>

#include "common/device_queue.h"

namespace zo2 {

namespace {
struct Span {
  std::string name;
  at::Device device;
  Marker a, b;
};
std::vector<Span>& spans() {
  static std::vector<Span> s;
  return s;
}
}  // namespace

bool profiling_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("ZO2_PROFILE");
    return v && v[0] == '1';
  }();
  return on;
}

PhaseScope::PhaseScope(const char* name, const at::Device& device) {
  if (!profiling_enabled() || !device.is_cuda()) return;
  spans().push_back(Span{name, device, Marker(), Marker()});
  index_ = static_cast<int>(spans().size()) - 1;
  Queue::current(device).record(spans()[index_].a, /*timing=*/true);
}

PhaseScope::~PhaseScope() {
  if (index_ >= 0) Queue::current(spans()[index_].device).record(spans()[index_].b, /*timing=*/true);
}

void profile_reset() { spans().clear(); }

std::map<std::string, double> profile_report() {
  std::map<std::string, double> ms;
  for (const Span& s : spans()) ms[s.name] += Marker::elapsed_ms(s.a, s.b);
  return ms;
}

}  // namespace zo2
