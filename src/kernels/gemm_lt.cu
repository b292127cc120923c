// cuBLASLt matmul for one linear layer with bias, ReLU, scale and residual in the epilogue (gemm_lt.h).
#include "kernels/gemm_lt.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "common/check.h"
#include "common/error.h"

namespace zo2::kernels::cuda {
namespace {

cudaDataType_t cuda_type(DType d) {
  switch (d) {
    case DType::kF32: return CUDA_R_32F;
    case DType::kF16: return CUDA_R_16F;
    case DType::kBF16: return CUDA_R_16BF;
  }
  throw_error("lt_linear: unknown dtype ", int(d));
}

// Largest power of two up to 256 that divides an address or byte offset: what an algorithm may assume.
uint32_t alignment(uintptr_t a) {
  uint32_t al = 256;
  while (al > 1 && a % al) al /= 2;
  return al;
}
uint32_t alignment(const void* p) { return alignment(reinterpret_cast<uintptr_t>(p)); }

// One handle per device, created with that device current (callers hold the plan mutex).
cublasLtHandle_t handle(int device) {
  static std::map<int, cublasLtHandle_t> handles;
  cublasLtHandle_t& h = handles[device];
  if (!h) CUBLAS_CHECK(cublasLtCreate(&h));
  return h;
}

// Descriptors and the chosen algorithm of one (device, shape, dtype, epilogue, alignment).
struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t w = nullptr, x = nullptr, y = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool ok = false;
  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (y) cublasLtMatrixLayoutDestroy(y);
    if (x) cublasLtMatrixLayoutDestroy(x);
    if (w) cublasLtMatrixLayoutDestroy(w);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

template <class T>
void set_desc(cublasLtMatmulDesc_t op, cublasLtMatmulDescAttributes_t attr, const T& v) {
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, attr, &v, sizeof(v)));
}

// Column-major view of the row-major layer: y^T [n, m] = (w [k, n])^T x^T [k, m].
std::unique_ptr<Plan> make_plan(const LtLinear& l, int device, uint32_t align_w, uint32_t align_x, uint32_t align_y,
                                uint32_t align_c) {
  auto p = std::make_unique<Plan>();
  const cudaDataType_t t = cuda_type(l.dtype);
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  set_desc(p->op, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
  set_desc(p->op, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
  cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_DEFAULT;
  if (l.bias) ep = l.relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
  else if (l.relu) ep = CUBLASLT_EPILOGUE_RELU;
  set_desc(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, ep);
  if (l.bias) set_desc(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, t);
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->w, t, uint64_t(l.k), uint64_t(l.n), int64_t(l.k)));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->x, t, uint64_t(l.k), uint64_t(l.m), int64_t(l.k)));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->y, t, uint64_t(l.n), uint64_t(l.m), int64_t(l.n)));
  if (l.batch > 1) {
    const int32_t count = int32_t(l.batch);
    const std::pair<cublasLtMatrixLayout_t, int64_t> layouts[] = {
        {p->w, l.w_stride}, {p->x, l.x_stride}, {p->y, l.y_stride}};
    for (auto [layout, stride] : layouts) {
      CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
      CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                    sizeof(stride)));
    }
    if (l.bias) set_desc(p->op, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, l.bias_stride);
  }
  cublasLtMatmulPreference_t pref;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = kLtWorkspaceBytes;
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_w},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_x},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_c},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_y}};
  for (const auto& [attr, v] : aligns) CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &v, sizeof(v)));
  cublasLtMatmulHeuristicResult_t res{};
  int found = 0;
  const cublasStatus_t st =
      cublasLtMatmulAlgoGetHeuristic(handle(device), p->op, p->w, p->x, p->y, p->y, pref, 1, &res, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  p->ok = st == CUBLAS_STATUS_SUCCESS && found > 0 && res.state == CUBLAS_STATUS_SUCCESS;
  if (p->ok) p->algo = res.algo;
  return p;
}

}  // namespace

bool lt_linear(const LtLinear& l, void* workspace, size_t workspace_bytes, void* stream) {
  ZO2_REQUIRE(l.m >= 0 && l.n >= 0 && l.k >= 0, "lt_linear: negative size m = ", l.m, ", n = ", l.n, ", k = ", l.k);
  ZO2_REQUIRE(!(l.relu && l.residual), "lt_linear: ReLU with a residual is not supported");
  ZO2_REQUIRE(!l.residual || l.residual != l.y, "lt_linear: the residual must not be the output");
  if (l.m == 0 || l.n == 0 || l.k == 0) return false;  // nothing for cuBLASLt to do; the caller handles it
  ZO2_REQUIRE(l.x && l.w && l.y, "lt_linear: x, w or y is null");
  ZO2_REQUIRE(workspace_bytes >= kLtWorkspaceBytes, "lt_linear: workspace of ", workspace_bytes, " bytes < ",
              kLtWorkspaceBytes);
  ZO2_REQUIRE(l.batch >= 1 && l.batch <= (int64_t(1) << 30), "lt_linear: batch = ", l.batch);
  const int64_t es = l.dtype == DType::kF32 ? 4 : 2;
  // Operand b of a batch starts stride * b elements on: its alignment is that of the stride too.
  auto stride_alignment = [&](int64_t stride) { return alignment(uintptr_t(stride * es)); };
  const uint32_t as = l.batch == 1 ? 256
                                   : std::min({stride_alignment(l.x_stride), stride_alignment(l.w_stride),
                                               stride_alignment(l.y_stride),
                                               l.bias ? stride_alignment(l.bias_stride) : 256u});
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const uint32_t aw = alignment(l.w), ax = alignment(l.x), ay = alignment(l.y),
                 ac = l.residual ? alignment(l.residual) : ay, ab = l.bias ? alignment(l.bias) : 256;
  // Below 16 bytes cuBLASLt falls back to kernels that also round partial results; the layers' tensors
  // come from the caching allocator, so this only turns away odd views (the caller uses addmm).
  if (std::min({aw, ax, ay, ac, ab, as}) < 16) return false;
  using Key = std::tuple<int, int, int64_t, int64_t, int64_t, bool, bool, bool, uint32_t, uint32_t, uint32_t, uint32_t,
                         int64_t, int64_t, int64_t, int64_t, int64_t>;
  const int64_t batched = l.batch > 1;
  const Key key{device, int(l.dtype), l.m, l.n, l.k, l.bias != nullptr, l.residual != nullptr, l.relu,
                std::min(aw, as), std::min(ax, as), std::min(ay, as), std::min(ac, as), l.batch,
                batched * l.x_stride, batched * l.w_stride, batched * l.y_stride, batched * l.bias_stride};
  static std::mutex mu;
  static std::map<Key, std::unique_ptr<Plan>> plans;
  std::lock_guard<std::mutex> lock(mu);
  std::unique_ptr<Plan>& plan = plans[key];
  if (!plan) plan = make_plan(l, device, std::min(aw, as), std::min(ax, as), std::min(ay, as), std::min(ac, as));
  if (!plan->ok) return false;
  if (l.bias) set_desc(plan->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, l.bias);
  const float alpha = l.alpha, beta = l.residual ? 1.f : 0.f;
  CUBLAS_CHECK(cublasLtMatmul(handle(device), plan->op, &alpha, l.w, plan->w, l.x, plan->x, &beta,
                              l.residual ? l.residual : l.y, plan->y, l.y, plan->y, &plan->algo, workspace,
                              workspace_bytes, static_cast<cudaStream_t>(stream)));
  return true;
}

int64_t lt_branches_per_matmul(int64_t m, int64_t n) {
  int device = 0, sms = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  // Fraction of the last wave's slots that tiles fill, over all waves.
  auto fill = [&](int64_t tiles) { return double(tiles) / double((tiles + sms - 1) / sms * sms); };
  const int64_t tiles = ((m + 127) / 128) * ((n + 255) / 256);
  // At most one wave: every SM gets one tile, so nothing overlaps a tile's epilogue with the next
  // tile's main loop and each branch pays the ramp-up; two branches share it.
  if (tiles <= sms) return 2;
  return fill(2 * tiles) > fill(tiles) + 0.05 ? 2 : 1;
}

}  // namespace zo2::kernels::cuda
