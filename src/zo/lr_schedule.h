// Learning-rate schedules (transformers' semantics): constant, linear decay or cosine, after a linear
// warmup from 0.
#pragma once

#include <cstdint>
#include <string>

namespace zo2 {

struct LrSchedule {
  enum class Kind { kConstant, kLinear, kCosine };
  Kind kind = Kind::kConstant;
  double base = 1e-6;
  int64_t warmup = 0;  // steps
  int64_t total = 1;   // steps of the whole run (linear and cosine reach 0 there)

  double at(int64_t step) const;  // step counts from 0
};

// "constant" | "linear" | "cosine"; throws naming the value.
LrSchedule::Kind parse_lr_kind(const std::string& name);
const char* lr_kind_name(LrSchedule::Kind kind);

}  // namespace zo2
