#!/usr/bin/env python3
"""Fits the polynomials of the GPU Box-Muller (src/kernels/zo_element.h: log_unit, sincospi_unit) and
bounds their error by emulating that float32 code op by op (mpmath, one rounding per operation, fmaf
rounded once) against mpmath's exact Box-Muller on the same uniforms.

    python3 scripts/ref/fit_box_muller.py        # needs mpmath; about a minute

Prints the coefficients (paste into zo_element.h) and the errors: the log in ulps, and |z - exact| over
random words plus words that give the extremes (u near 2^-33: |z| up to 6.8; u near 1: z near 0).
The GPU test ZoKernelsGpu.NormalMatchesCpuWithin1e6 checks the compiled kernel against the host.
"""
import random
import struct

import mpmath as mp

mp.mp.prec = 113


def r32(x):  # round to binary32, nearest-even (normal range)
    return float(mp.fadd(x, 0, prec=24, rounding="n"))


def fma(a, b, c):
    return float(mp.fadd(mp.fmul(a, b, exact=True), c, prec=24, rounding="n"))


def mul(a, b):
    return float(mp.fmul(a, b, prec=24, rounding="n"))


def fit(fn, a, b, deg):  # near-minimax (Chebyshev) fit, coefficients highest degree first, in binary32
    c = mp.chebyfit(fn, [a, b], deg + 1)
    return [r32(v) for v in c]


# For |r| <= 1/4 and x = r^2: sin(pi r) = pi r + r^3 S(x), cos(pi r) = 1 + c0 x + x^2 C(x), c0 = -pi^2/2,
# the leading terms with pi and c0 split in two floats (error-free r^2 for the cosine), so that the
# rounding of the sum is the only large error; log1p(f) = f + f^2 R(f) for |f| <= 1/3.
PI_HI = r32(mp.pi)
PI_LO = r32(mp.pi - PI_HI)
C0 = -mp.pi**2 / 2
C0_HI = r32(C0)
C0_LO = r32(C0 - C0_HI)
S = fit(lambda x: (mp.sinpi(mp.sqrt(x)) / mp.sqrt(x) - mp.pi) / x if x > 0 else -mp.pi**3 / 6, 0, mp.mpf(1) / 16, 3)
C = fit(lambda x: (mp.cospi(mp.sqrt(x)) - 1 - C0 * x) / x**2 if x > 0 else mp.pi**4 / 24, 0, mp.mpf(1) / 16, 3)
R = fit(lambda f: (mp.log1p(f) - f) / f**2 if f != 0 else mp.mpf(-0.5), -mp.mpf(1) / 3, mp.mpf(1) / 3, 9)
LN2_HI = r32(mp.log(2))
LN2_LO = r32(mp.log(2) - LN2_HI)


def horner(c, x):
    p = c[0]
    for v in c[1:]:
        p = fma(p, x, v)
    return p


def bits(f):
    return struct.unpack("I", struct.pack("f", f))[0]


def from_bits(u):
    return struct.unpack("f", struct.pack("I", u & 0xFFFFFFFF))[0]


def log_unit(u):
    k = (bits(u) - 0x3F2AAAAB) >> 23  # Python's >> floors, like the arithmetic shift
    f = r32(from_bits(bits(u) - (k << 23)) - 1.0)
    return fma(float(k), LN2_HI, fma(float(k), LN2_LO, fma(mul(f, f), horner(R, f), f)))


def sincospi_unit(t):
    q = float(round(2 * t))  # rintf: nearest-even, like Python's round
    r = fma(q, -0.5, t)
    r2 = mul(r, r)
    r2_lo = fma(r, r, -r2)  # exact: r^2 = r2 + r2_lo
    sp = fma(r, PI_HI, fma(mul(r2, r), horner(S, r2), mul(r, PI_LO)))
    b = fma(r2, C0_LO, mul(mul(r2, r2), horner(C, r2)))
    cp = r32(1.0 + fma(r2, C0_HI, fma(r2_lo, C0_HI, b)))
    return [(sp, cp), (cp, -sp), (-sp, -cp), (-cp, sp)][int(q) & 3]


def uniforms(a, b):  # as box_muller computes them: float(a) * 2^-32 + 2^-33, float(b) * 2^-31 + 2^-32
    u = float(mp.fadd(mp.fmul(r32(a), mp.mpf(2) ** -32), mp.mpf(2) ** -33, prec=24, rounding="n"))
    t = float(mp.fadd(mp.fmul(r32(b), mp.mpf(2) ** -31), mp.mpf(2) ** -32, prec=24, rounding="n"))
    return u, t


def ulp(x):
    e = int(mp.floor(mp.log(abs(x), 2)))
    return float(mp.mpf(2) ** (max(e, -126) - 23))


def main():
    print("R (log1p):", ", ".join(repr(v) for v in R))
    print("S (sinpi):", ", ".join(repr(v) for v in S), "; pi hi, lo:", repr(PI_HI), repr(PI_LO))
    print("C (cospi):", ", ".join(repr(v) for v in C), "; c0 hi, lo:", repr(C0_HI), repr(C0_LO))
    print("ln2 hi, lo:", repr(LN2_HI), repr(LN2_LO))
    rng = random.Random(1)
    words = [(0, 0), (0xFFFFFFFF, 0xFFFFFFFF), (1, 1 << 30), (0xFFFFFFFF, 0x40000000)]
    words += [(rng.getrandbits(32), rng.getrandbits(32)) for _ in range(40000)]
    words += [(rng.getrandbits(8), rng.getrandbits(32)) for _ in range(3000)]
    words += [(0xFFFFFFFF - rng.getrandbits(12), rng.getrandbits(32)) for _ in range(3000)]
    worst_z = worst_log = 0.0
    for a, b in words:
        u, t = uniforms(a, b)
        lu = log_unit(u)
        if u != 1.0:
            worst_log = max(worst_log, float(abs(lu - mp.log(u))) / ulp(float(mp.log(u))))
        s = float(mp.sqrt(mul(-2.0, lu), prec=24, rounding="n"))
        sn, cs = sincospi_unit(t)
        exact = mp.sqrt(-2 * mp.log(u))
        for z, ref in ((mul(s, sn), exact * mp.sinpi(t)), (mul(s, cs), exact * mp.cospi(t))):
            worst_z = max(worst_z, float(abs(z - ref)))
    print(f"log_unit: max error {worst_log:.3f} ulp; z: max |z - exact| {worst_z:.3e} over {len(words)} pairs")
    # The host rounds the exact value once (<= 2^-22 for |z| < 8), so host and device differ by at most:
    bound = worst_z + 2.0**-22
    print(f"bound on |z_gpu - z_cpu|: {bound:.3e} ({'within' if bound < 1e-6 else 'OVER'} 1e-6)")


if __name__ == "__main__":
    main()
