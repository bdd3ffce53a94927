// Vectorised float32 exp, log and tanh (Cephes polynomials, within a few ulp), written with GCC vector
// extensions so each multi-versioned loop runs 16 lanes at a time in whatever ISA it was compiled for.
// Special values follow C99/numpy: exp(-inf) = 0, exp(inf) = inf, log(0) = -inf, log(x < 0) = nan,
// tanh(+-inf) = +-1, nan stays nan, denormal inputs and results are handled.
#pragma once

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

NEEDLE_INLINE vf v_log(vf x) {
  const vi tiny = x < 1.17549435e-38f;  // denormals (and 0, negatives): scale up by 2^23 first
  const vf xs = select(tiny, x * 8388608.0f, x);
  const vi bits = (vi)xs;
  vf e = __builtin_convertvector(((bits >> 23) & 0xff) - 126, vf) - select(tiny, vf{} + 23.0f, vf{});
  vf m = (vf)((bits & (int32_t)0x807fffff) | 0x3f000000);  // mantissa in [0.5, 1)
  const vi lowm = m < 0.707106781186547524f;
  e = select(lowm, e - 1.0f, e);
  m = select(lowm, m + m - 1.0f, m - 1.0f);
  const vf z = m * m;
  vf y = 7.0376836292e-2f * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  y = y + e * -2.12194440e-4f;
  y = y - 0.5f * z;
  vf res = m + y + e * 0.693359375f;
  const vf inf = vf{} + __builtin_inff();
  res = select(x == inf, inf, res);
  res = select(x == 0.0f, -inf, res);
  res = select(x < 0.0f, vf{} + __builtin_nanf(""), res);
  return select(x != x, x, res);
}

NEEDLE_INLINE vf v_tanh(vf x) {
  const vi sign = (vi)x & (int32_t)0x80000000;
  const vf ax = (vf)((vi)x & 0x7fffffff);
  const vf z = x * x;
  vf p = -5.70498872745e-3f * z + 2.06390887954e-2f;  // odd polynomial for |x| < 0.625
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const vf small = p * z * x + x;
  const vf big = 1.0f - 2.0f / (v_exp(ax + ax) + 1.0f);  // saturates to 1 for large |x| and inf
  return select(ax < 0.625f, small, (vf)((vi)big | sign));
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
