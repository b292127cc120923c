#include "zo/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace zo2 {

double LrSchedule::at(int64_t step) const {
  if (step < warmup) return base * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  const double progress =
      static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
  switch (kind) {
    case Kind::kConstant: return base;
    case Kind::kLinear: return base * std::max(0.0, 1.0 - progress);
    case Kind::kCosine: return base * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
  }
  return base;
}

LrSchedule::Kind parse_lr_kind(const std::string& name) {
  if (name == "constant") return LrSchedule::Kind::kConstant;
  if (name == "linear") return LrSchedule::Kind::kLinear;
  if (name == "cosine") return LrSchedule::Kind::kCosine;
  throw_error("invalid learning-rate schedule '", name, "' (constant, linear or cosine)");
}

const char* lr_kind_name(LrSchedule::Kind kind) {
  switch (kind) {
    case LrSchedule::Kind::kConstant: return "constant";
    case LrSchedule::Kind::kLinear: return "linear";
    case LrSchedule::Kind::kCosine: return "cosine";
  }
  return "?";
}

}  // namespace zo2
