// MPI_CHECK and NCCL_CHECK: like CUDA_CHECK (common/check.h), they report the expression, file:line and
// rank@host and throw zo2::Error. Only comm/ includes this header (and with it mpi.h / nccl.h).
#pragma once

#include "common/check.h"

#ifdef ZO2_WITH_MPI
#define OMPI_SKIP_MPICXX 1  // the C interface only (the deprecated C++ bindings warn and are unused)
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
namespace zo2 {
// MPI's text for an error code (a thread-local buffer, valid until the next call).
const char* mpi_error_text(int code);
}  // namespace zo2
#define MPI_CHECK(expr) ZO2_CHECK_GEN("MPI", expr, MPI_SUCCESS, ::zo2::mpi_error_text)
#endif

#ifdef ZO2_WITH_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#define NCCL_CHECK(expr) ZO2_CHECK_GEN("NCCL", expr, ncclSuccess, ncclGetErrorString)
#ifndef CUDA_CHECK  // common/check.h defines it only with ZO2_WITH_CUDA; NCCL builds need it regardless
#define CUDA_CHECK(expr) ZO2_CHECK_GEN("CUDA", expr, cudaSuccess, cudaGetErrorString)
#endif
#endif
