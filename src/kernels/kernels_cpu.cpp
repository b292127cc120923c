// CPU twins of the ZO kernels: loops over Philox groups around the shared per-element arithmetic of
// zo_element.h. Each group is a pure function of its index, so the result does not depend on the
// number of threads at::parallel_for uses.
#include <ATen/Parallel.h>

#include <algorithm>

#include "kernels/zo_element.h"
#include "kernels/zo_kernels.h"

namespace zo2::kernels::cpu {
namespace {
constexpr int64_t kGrain = 1024;  // groups per parallel_for chunk
}

void normal(float* out, int64_t n, uint64_t key, uint32_t param, uint32_t dir, uint64_t offset) {
  ZO2_REQUIRE(n >= 0, "normal: n = ", n, " is negative");
  if (n == 0) return;
  ZO2_REQUIRE(out, "normal: out is null");
  const uint64_t subseq = subsequence(dir, param), end = offset + uint64_t(n);
  const int64_t g_begin = int64_t(offset / 4), g_end = int64_t((end + 3) / 4);
  at::parallel_for(g_begin, g_end, kGrain, [&](int64_t gb, int64_t ge) {
    for (int64_t g = gb; g < ge; ++g) {
      float z[4];
      normals<1>(key, subseq, uint64_t(g), z);
      for (int lane = 0; lane < 4; ++lane) {
        const uint64_t i = uint64_t(g) * 4 + lane;
        if (i >= offset && i < end) out[i - offset] = z[lane];
      }
    }
  });
}

void update_perturb(void* theta, DType theta_dtype, int64_t n, uint32_t param, const UpdateSpec& up,
                    const PerturbSpec& pt) {
  check_update_perturb("update_perturb", theta, n, up, pt);
  const bool update = has_update(up);
  if (n == 0 || (!update && pt.nbranch == 0)) return;
  dispatch_dtype(theta_dtype, "update_perturb: theta", [&](auto tt) {
    dispatch_dtype(pt.out_dtype, "update_perturb: PerturbSpec.out", [&](auto to) {
      using TT = decltype(tt);
      using TO = decltype(to);
      TT* th_ptr = static_cast<TT*>(theta);
      TO* out = static_cast<TO*>(pt.out);
      at::parallel_for(0, (n + 3) / 4, kGrain, [&](int64_t gb, int64_t ge) {
        for (int64_t g = gb; g < ge; ++g) {
          const int64_t i0 = 4 * g, m = std::min<int64_t>(4, n - i0);
          float t[4] = {};
          TT th[4] = {};
          for (int j = 0; j < m; ++j) t[j] = to_float(th[j] = th_ptr[i0 + j]);
          if (update) {
            update_tile<1>(param, up, uint64_t(g), t, th);
            for (int j = 0; j < m; ++j) th_ptr[i0 + j] = th[j];
          }
          perturb_tile<1, TO>(param, pt, uint64_t(g), t, [&](int b, const TO(&o)[4]) {
            for (int j = 0; j < m; ++j) out[b * pt.out_stride + i0 + j] = o[j];
          });
        }
      });
    });
  });
}

void update_perturb_many(const Segments& segs, DType theta_dtype, const UpdateSpec& up, const PerturbSpec& pt) {
  check_segments("update_perturb_many", segs, up, pt);
  dispatch_dtype(pt.out_dtype, "update_perturb_many: PerturbSpec.out", [&](auto to) {
    for (int i = 0; i < segs.count; ++i) {
      const Segment& s = segs.seg[i];
      PerturbSpec p = pt;
      if (p.out) p.out = static_cast<decltype(to)*>(p.out) + s.out_offset;
      update_perturb(s.theta, theta_dtype, s.n, s.param, s.update ? up : UpdateSpec{}, p);
    }
  });
}

void gather_perturb(const void* table, DType table_dtype, int64_t dim, const int64_t* rows, int64_t nrows,
                    uint32_t param, const PerturbSpec& pt) {
  check_gather("gather_perturb", table, dim, rows, nrows, pt);
  if (dim == 0 || nrows == 0 || pt.nbranch == 0) return;
  for (int64_t r = 0; r < nrows; ++r)
    ZO2_REQUIRE(rows[r] >= 0, "gather_perturb: rows[", r, "] = ", rows[r], " is negative");
  dispatch_dtype(table_dtype, "gather_perturb: table", [&](auto tt) {
    dispatch_dtype(pt.out_dtype, "gather_perturb: PerturbSpec.out", [&](auto to) {
      using TT = decltype(tt);
      using TO = decltype(to);
      const TT* tab = static_cast<const TT*>(table);
      TO* out = static_cast<TO*>(pt.out);
      at::parallel_for(0, nrows, std::max<int64_t>(1, 4 * kGrain / dim), [&](int64_t rb, int64_t re) {
        for (int64_t r = rb; r < re; ++r) {
          // Elements [base, base + dim) of the flat table; walk the Philox groups that cover them.
          const int64_t base = rows[r] * dim;
          for (int64_t g = base / 4; 4 * g < base + dim; ++g) {
            const int64_t lo = std::max(4 * g, base), hi = std::min(4 * g + 4, base + dim);
            float t[4] = {};
            for (int64_t i = lo; i < hi; ++i) t[i - 4 * g] = to_float(tab[i]);
            perturb_tile<1, TO>(param, pt, uint64_t(g), t, [&](int b, const TO(&o)[4]) {
              for (int64_t i = lo; i < hi; ++i) out[b * pt.out_stride + r * dim + (i - base)] = o[i - 4 * g];
            });
          }
        }
      });
    });
  });
}

}  // namespace zo2::kernels::cpu
