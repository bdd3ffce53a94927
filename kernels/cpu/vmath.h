// Vectorised float32 exp, log and tanh (minimax polynomials, within a few ulp), written with GCC vector
// extensions so each multi-versioned loop runs 16 lanes at a time in whatever ISA it was compiled for.
// Special values follow C99/numpy: exp(-inf) = 0, exp(inf) = inf, log(0) = -inf, log(x < 0) = nan,
// tanh(+-inf) = +-1, nan stays nan, denormal inputs and results are handled.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common.h"

namespace needle {
namespace cpu {
namespace vmath {

typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
constexpr size_t LANES = 16;

NEEDLE_INLINE vf select(vi mask, vf a, vf b) { return (vf)((mask & (vi)a) | (~mask & (vi)b)); }

NEEDLE_INLINE vf v_exp(vf x) {
  vf xc = x < -104.0f ? vf{} - 104.0f : x;  // exp(-104) is below the smallest denormal
  xc = xc > 89.0f ? vf{} + 89.0f : xc;      // exp(89) overflows to inf
  xc = x != x ? vf{} : xc;                  // keep nan out of the integer conversion
  const vf magic = vf{} + 12582912.0f;      // 1.5 * 2^23: adding it rounds to an integer
  const vf k = (xc * 1.44269504088896341f + magic) - magic;
  vf r = xc - k * 0.693359375f;
  r = r - k * -2.12194440e-4f;
  const vf z = r * r;
  vf y = 1.9875691500e-4f * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * z + r + 1.0f;
  // 2^k in two halves so k down to -150 (denormal results) and up to 128 (overflow) both work
  const vi ki = __builtin_convertvector(k, vi);
  const vi k1 = ki >> 1, k2 = ki - k1;
  const vf s1 = (vf)((k1 + 127) << 23), s2 = (vf)((k2 + 127) << 23);
  return select(x != x, x, (y * s1) * s2);
}

/// Whether any lane of a comparison mask is set (a few scalar ORs: the rare special-value path's test).
NEEDLE_INLINE bool any(vi mask) {
  uint64_t w[LANES / 2];
  std::memcpy(w, &mask, sizeof w);
  uint64_t r = 0;
  for (size_t i = 0; i < LANES / 2; ++i) r |= w[i];
  return r != 0;
}

/// Lanes of `v` where `mask` is set recomputed by the scalar f (the C library: exact special values).
template <typename F>
NEEDLE_INLINE vf fix_lanes(vi mask, vf x, vf v, F f) {
  float xs[LANES], vs[LANES];
  int32_t ms[LANES];
  std::memcpy(xs, &x, sizeof xs);
  std::memcpy(vs, &v, sizeof vs);
  std::memcpy(ms, &mask, sizeof ms);
  for (size_t i = 0; i < LANES; ++i)
    if (ms[i]) vs[i] = f(xs[i]);
  std::memcpy(&v, vs, sizeof v);
  return v;
}

/// log x = n ln2 + log1p(r) with x = 2^n (1 + r), 1 + r in [2/3, 4/3) (the mantissa split at 2/3 keeps r
/// small on both sides of 1), log1p(r) = r + r^2 P(r) with P a degree-7 minimax fit (error < 0.6 ulp).
/// Zero, negatives, denormals, inf and nan (one test: x - FLT_MIN as unsigned bits beyond the finite
/// normals) are rare: their lanes go to the C library.
NEEDLE_INLINE vf v_log(vf x) {
  typedef uint32_t vu __attribute__((vector_size(64)));
  const vu bits = (vu)x;
  const vi special = (bits - 0x00800000u) >= (0x7f800000u - 0x00800000u);
  const vu u = bits - 0x3f2aaaabu;  // bits of 2/3: n counts the binades above 2/3
  const vf n = __builtin_convertvector((vi)u >> 23, vf);
  const vf r = (vf)((u & 0x007fffffu) + 0x3f2aaaabu) - 1.0f;
  vf p = 0x1.1f427cp-3f * r - 0x1.3b2848p-3f;
  p = p * r + 0x1.1ea258p-3f;
  p = p * r - 0x1.5032e8p-3f;
  p = p * r + 0x1.99d428p-3f;
  p = p * r - 0x1.00148p-2f;
  p = p * r + 0x1.5554fap-2f;
  p = p * r - 0x1.ffffd6p-2f;
  const vf y = p * (r * r) + (n * 0x1.62e43p-1f + r);
  return any(special) ? fix_lanes(special, x, y, [](float v) { return std::log(v); }) : y;
}

/// tanh x = q / (q + 2) with q = expm1(2x): exact near 0 (q ~ 2x) and saturating to +-1. expm1(t) =
/// 2^k (f + f^2 P(f)) + 2^k - 1 with t = k ln2 + f, |f| <= ln2/2, P a degree-4 minimax fit. |x| is first
/// clamped to 10, where tanh is 1 in float32 (and where 2^k stays normal); nan passes through the
/// arithmetic.
NEEDLE_INLINE vf v_tanh(vf x) {
  const vf xc = select(x > 10.0f, vf{} + 10.0f, select(x < -10.0f, vf{} - 10.0f, x));
  const vf t = xc + xc;
  const vf magic = vf{} + 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const vf kr = t * 1.44269504088896341f + magic;
  const vf k = kr - magic;
  const vf f = (t - k * 0x1.62e4p-1f) - k * 0x1.7f7d1cp-20f;  // ln2 in two parts: f exact
  vf p = 0x1.6bec04p-10f * f + 0x1.122768p-7f;
  p = p * f + 0x1.555674p-5f;
  p = p * f + 0x1.5554b0p-3f;
  p = p * f + 0x1.fffffep-2f;
  p = p * (f * f) + f;
  const vf s = (vf)(((vi)kr - (vi)magic) * (1 << 23) + 0x3f800000);  // 2^k
  const vf q = p * s + (s - 1.0f);
  const vf y = q / (q + 2.0f);
  return (vf)((vi)y | ((vi)x & (int32_t)0x80000000));  // tanh(-0) = -0 (q is +0 there)
}

/// z[i] = F::apply(x[i]) sixteen lanes at a time; the tail goes through a padded block.
template <typename F>
NEEDLE_INLINE void map16(const float* x, float* z, size_t n) {
  size_t i = 0;
  for (; i + LANES <= n; i += LANES) {
    vf v;
    std::memcpy(&v, x + i, sizeof v);
    v = F::apply(v);
    std::memcpy(z + i, &v, sizeof v);
  }
  if (i < n) {
    vf v = vf{} + 1.0f;
    std::memcpy(&v, x + i, (n - i) * sizeof(float));
    v = F::apply(v);
    std::memcpy(z + i, &v, (n - i) * sizeof(float));
  }
}

struct Exp { static NEEDLE_INLINE vf apply(vf v) { return v_exp(v); } };
struct Log { static NEEDLE_INLINE vf apply(vf v) { return v_log(v); } };
struct Tanh { static NEEDLE_INLINE vf apply(vf v) { return v_tanh(v); } };

NEEDLE_CLONES_FN inline void exp_f32(const float* x, float* z, size_t n) { map16<Exp>(x, z, n); }
NEEDLE_CLONES_FN inline void log_f32(const float* x, float* z, size_t n) { map16<Log>(x, z, n); }
NEEDLE_CLONES_FN inline void tanh_f32(const float* x, float* z, size_t n) { map16<Tanh>(x, z, n); }

}  // namespace vmath
}  // namespace cpu
}  // namespace needle
