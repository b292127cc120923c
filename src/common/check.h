// One check macro per library: each reports the expression, file:line and rank@host, then throws.
// CUDA, cuRAND and cuBLASLt live here; NCCL and MPI have theirs in comm/ (the only place that includes them).
#pragma once

#include <string>

namespace zo2 {

// "rank 3@node17" once the process knows its rank (comm sets it), "host node17" before.
std::string rank_at_host();
void set_process_rank(int rank);

// Formats "<lib> error <code> (<text>) in `expr` at file:line on rank@host" and throws zo2::Error.
[[noreturn]] void report_check_failure(const char* lib, long code, const char* text, const char* expr,
                                       const char* file, int line);

}  // namespace zo2

#define ZO2_CHECK_GEN(lib, expr, ok, text_of)                                                  \
  do {                                                                                         \
    auto zo2_check_status_ = (expr);                                                           \
    if (zo2_check_status_ != (ok))                                                             \
      ::zo2::report_check_failure(lib, static_cast<long>(zo2_check_status_),                   \
                                  text_of(zo2_check_status_), #expr, __FILE__, __LINE__);      \
  } while (0)

#if defined(__CUDACC__) || defined(ZO2_WITH_CUDA)
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <curand.h>
namespace zo2 {
inline const char* curand_status_text(curandStatus_t s) {
  switch (s) {
    case CURAND_STATUS_SUCCESS: return "success";
    case CURAND_STATUS_NOT_INITIALIZED: return "not initialized";
    case CURAND_STATUS_ALLOCATION_FAILED: return "allocation failed";
    case CURAND_STATUS_LAUNCH_FAILURE: return "launch failure";
    default: return "curand error";
  }
}
}  // namespace zo2
#define CUDA_CHECK(expr) ZO2_CHECK_GEN("CUDA", expr, cudaSuccess, cudaGetErrorString)
#define CURAND_CHECK(expr) ZO2_CHECK_GEN("cuRAND", expr, CURAND_STATUS_SUCCESS, ::zo2::curand_status_text)
#define CUBLAS_CHECK(expr) ZO2_CHECK_GEN("cuBLAS", expr, CUBLAS_STATUS_SUCCESS, cublasLtGetStatusString)
// After every kernel launch: a bad launch configuration is reported at the launch site.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
#endif
