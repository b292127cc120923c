#include "comm/dist.h"

#include <cstdlib>

#include "comm/device.h"
#include "comm/launch_env.h"
#include "common/check.h"
#include "common/error.h"
#ifdef ZO2_WITH_MPI
#include "comm/mpi_group.h"
#endif
#ifdef ZO2_WITH_NCCL
#include "comm/nccl_group.h"
#endif

namespace zo2 {
namespace {

// The group abort_job() ends; set by init_process_group, cleared by the group's destructor.
ProcessGroup* g_active = nullptr;

constexpr double kDefaultCollectiveTimeoutS = 300;

// One process: no MPI_Init, so the zo2 binary runs without a launcher.
class SingleGroup final : public ProcessGroup {
 public:
  explicit SingleGroup(double timeout_s) : ProcessGroup(Backend::Single, timeout_s) { device_ = bind_device(0); }
  int rank() const override { return one_.rank(); }
  int world() const override { return one_.world(); }
  void allreduce_sum(double* v, int n) override { one_.allreduce_sum(v, n); }
  void allgather(const double* s, int n, double* r) override { one_.allgather(s, n, r); }
  void allgather_u64(const uint64_t* s, int n, uint64_t* r) override { one_.allgather_u64(s, n, r); }
  void broadcast_u64(uint64_t* v, int n, int root) override { one_.broadcast_u64(v, n, root); }
  void barrier() override { one_.barrier(); }
  [[noreturn]] void abort(int code) override { one_.abort(code); }

 private:
  SingleProcess one_;
};

double collective_timeout(const DistOptions& options) {
  return options.collective_timeout_s > 0 ? options.collective_timeout_s
                                          : collective_timeout_from_env(kDefaultCollectiveTimeoutS);
}

Backend resolve(Backend requested) {
  if (requested != Backend::Auto) return requested;
  if (const char* env = std::getenv("ZO2_BACKEND")) {
    const Backend b = parse_backend(env, "environment variable ZO2_BACKEND");
    if (b != Backend::Auto) return b;
  }
  if (!launched_multi_rank()) return Backend::Single;
#ifdef ZO2_WITH_NCCL
  if (cuda_device_count() > 0) return Backend::Nccl;
#endif
  return Backend::Mpi;
}

}  // namespace

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::Auto: return "auto";
    case Backend::Single: return "single";
    case Backend::Mpi: return "mpi";
    case Backend::Nccl: return "nccl";
  }
  return "?";
}

Backend parse_backend(const std::string& s, const std::string& what) {
  for (Backend b : {Backend::Auto, Backend::Single, Backend::Mpi, Backend::Nccl})
    if (s == backend_name(b)) return b;
  throw_error(what, " = '", s, "': expected auto, single, mpi or nccl");
}

ProcessGroup::~ProcessGroup() {
  if (g_active == this) g_active = nullptr;
}

std::unique_ptr<ProcessGroup> init_process_group(const DistOptions& options) {
  ZO2_REQUIRE(g_active == nullptr, "init_process_group: this process already has a process group");
  std::unique_ptr<ProcessGroup> group;
  switch (resolve(options.backend)) {
    case Backend::Auto:
    case Backend::Single:
      group = std::make_unique<SingleGroup>(collective_timeout(options));
      break;
    case Backend::Mpi:
#ifdef ZO2_WITH_MPI
      group = std::make_unique<MpiGroup>(collective_timeout(options));
      break;
#else
      throw_error("backend mpi: this zo2 was built without MPI (ZO2_WITH_MPI=OFF)");
#endif
    case Backend::Nccl:
#ifdef ZO2_WITH_NCCL
      group = std::make_unique<NcclGroup>(collective_timeout(options));
      break;
#else
      throw_error("backend nccl: this zo2 was built without NCCL (ZO2_WITH_NCCL=OFF)");
#endif
  }
  g_active = group.get();
  return group;
}

bool mpi_active() {
#ifdef ZO2_WITH_MPI
  return mpi_is_active();
#else
  return false;
#endif
}

void abort_job(int code) {
  if (g_active != nullptr && g_active->backend() != Backend::Single) g_active->abort(code);
#ifdef ZO2_WITH_MPI
  mpi_abort_if_initialized(code);  // the group unwound with the exception and left MPI up for this
#endif
}

}  // namespace zo2
