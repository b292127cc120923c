#include "comm/launch_env.h"

#include <cerrno>
#include <cstdlib>

#include "common/error.h"

namespace zo2 {

std::optional<long> env_long(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long x = std::strtol(v, &end, 10);
  ZO2_REQUIRE(*v != '\0' && *end == '\0' && errno == 0, "environment variable ", name, "='", v,
              "' is not an integer");
  return x;
}

bool launched_multi_rank() {
  if (auto n = env_long("OMPI_COMM_WORLD_SIZE")) return *n > 1;
  if (auto n = env_long("PMI_SIZE")) return *n > 1;
  if (std::getenv("PMIX_RANK") != nullptr) return env_long("SLURM_STEP_NUM_TASKS").value_or(2) > 1;
  return false;
}

std::optional<LocalRankHint> local_rank_from_env() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"}) {
    if (auto r = env_long(name)) {
      ZO2_REQUIRE(*r >= 0, "environment variable ", name, "=", *r, " is negative");
      return LocalRankHint{static_cast<int>(*r), name};
    }
  }
  return std::nullopt;
}

double collective_timeout_from_env(double fallback) {
  const char* v = std::getenv("ZO2_COLLECTIVE_TIMEOUT");
  if (v == nullptr) return fallback;
  char* end = nullptr;
  double s = std::strtod(v, &end);
  ZO2_REQUIRE(*v != '\0' && *end == '\0' && s > 0, "environment variable ZO2_COLLECTIVE_TIMEOUT='", v,
              "' is not a positive number of seconds");
  return s;
}

void default_nccl_env() { setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/0); }

}  // namespace zo2
