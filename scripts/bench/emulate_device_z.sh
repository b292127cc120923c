#!/usr/bin/env bash
# Predicts max |z_gpu - z_cpu| without a GPU: runs the device's Box-Muller (zo_element.h: log_unit,
# sqrt_unit = sqrtf's bits, sincospi_unit -- plain IEEE fma/mul/add, so the host computes the same
# bits) and compares it with the CPU z of zo_element.h: the max over sampled words, and a bound over
# all words for |z| >= 4 (below 4, 1e-6 is >= 4 ulps). Needs g++ only.
# Usage: scripts/bench/emulate_device_z.sh [groups per thread, default 1e7]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/cmp.cpp" <<'CPP'
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "kernels/zo_element.h"
using namespace zo2::kernels;
const long double kPi = 3.141592653589793238462643383279502884L;

// The device branch of box_muller (zo_element.h), evaluated on the host.
void device_bm(uint32_t a, uint32_t b, float& z0, float& z1, float& s) {
  const float u = float(a) * 0x1p-32f + 0x1p-33f, t = float(b) * 0x1p-31f + 0x1p-32f;
  s = sqrt_unit(-2.f * log_unit(u));
  float sn, cs;
  sincospi_unit(t, sn, cs);
  z0 = s * sn, z1 = s * cs;
}

int main(int argc, char** argv) {
  // 1. Sampling: random words, and the tail (u <= 2^-10, |z| up to 6.8) with random angles.
  const long long groups = argc > 1 ? atoll(argv[1]) : 10000000;
  struct Worst { double d = 0; uint32_t a = 0, b = 0; long long n = 0; };
  std::vector<Worst> w(2);
  auto run = [&](int k) {
    for (long long g = 0; g < groups; ++g) {
      const Philox4 x = philox_group(step_key(1, 0), subsequence(0, k), g);
      for (int h = 0; h < 4; h += 2) {
        const uint32_t a = h == 0 ? x.w[0] : uint32_t(g % (1u << 22)), b = x.w[h + 1];
        float d[2], c[2], s;
        device_bm(a, b, d[0], d[1], s);
        box_muller(a, b, c[0], c[1]);
        for (int j = 0; j < 2; ++j, ++w[k].n)
          if (std::fabs(double(d[j]) - c[j]) > w[k].d) w[k] = {std::fabs(double(d[j]) - c[j]), a, b, w[k].n};
      }
    }
  };
  std::thread t0(run, 0), t1(run, 1);
  t0.join(), t1.join();
  const Worst& m = w[0].d >= w[1].d ? w[0] : w[1];
  std::printf("sampled: %lld z, max |z_dev - z_cpu| = %.4g (words %08x %08x)\n", w[0].n + w[1].n, m.d, m.a, m.b);

  // 2. Bound for |z| in [4, 7): z_dev = z (1 + e_s + e_sin) before its rounding, so the two roundings
  // add at most 1 ulp and a 3-ulp (1.43e-6) difference needs |e_s + e_sin| > 2 ulp / |z|. Take the
  // largest e_s over all radii >= the band's low end and e_sin over all angles with |sin| large enough.
  const int nb = 12;
  std::vector<double> es(nb), et(nb);
  for (uint32_t a = 0; a < (1u << 22); ++a) {
    float z0, z1, s;
    device_bm(a, 0, z0, z1, s);
    const long double se = sqrtl(-2.0L * logl((long double)(float(a) * 0x1p-32f + 0x1p-33f)));
    for (int k = 0; k < nb; ++k)
      if (se >= 4 + 0.25 * k) es[k] = std::fmax(es[k], std::fabs(double((s - se) / se)));
  }
  for (uint64_t b = 0; b < (1ull << 32); b += b < (1u << 24) ? 1 : b >> 24) {  // every distinct t
    const float t = float(uint32_t(b)) * 0x1p-31f + 0x1p-32f;
    float g[2];
    sincospi_unit(t, g[0], g[1]);
    const long double v[2] = {sinl(kPi * t), cosl(kPi * t)};
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < nb; ++k)
        if (fabsl(v[j]) >= (4 + 0.25 * k) / 6.7638) et[k] = std::fmax(et[k], std::fabs(double((g[j] - v[j]) / v[j])));
  }
  bool ok = true;
  for (int k = 0; k < nb; ++k) {
    ok &= es[k] + et[k] < 2 * 0x1p-21 / (4.25 + 0.25 * k);
    if (getenv("VERBOSE")) std::printf("band %.2f: e_s %.3g e_sin %.3g need < %.3g\n", 4 + 0.25 * k, es[k], et[k], 2 * 0x1p-21 / (4.25 + 0.25 * k));
  }
  std::printf("bound: |z_dev - z_cpu| <= 2 ulp (9.54e-7) for |z| in [4, 7): %s\n", ok ? "proven" : "NOT proven");
}
CPP
g++ -O2 -std=c++17 -ffp-contract=off -I"$root/src" "$work/cmp.cpp" -o "$work/cmp" -lpthread -lm
"$work/cmp" "${1:-10000000}"
