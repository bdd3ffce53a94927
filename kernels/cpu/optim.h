// Fused optimizer updates: one pass over a parameter instead of a dozen elementwise kernels.
#pragma once

#include <cmath>

#include "common.h"

namespace needle {
namespace cpu {

/// Scalars of one Adam step; bias1 = 1 - beta1^t, bias2 = 1 - beta2^t.
struct AdamConfig {
  double lr, beta1, beta2, eps, weight_decay, bias1, bias2;
  bool first;  // t == 1: the moments start from zero (m and v are not read)
};

/// One Adam step over n elements: reads (p, g, m, v), writes (op, om, ov). InPlace: the moments are updated
/// where they are (om is m, ov is v, and first is false), one pointer per moment, so the compiler has no
/// overlap to guard against: its run-time check would find om == m and fall back to a scalar loop.
template <typename T, bool InPlace>
NEEDLE_CLONES void adam_loop(const T* p, const T* g, T* m, T* v, T* op, T* om, T* ov, size_t n, T lr_t, T b1, T b2,
                             T eps, T wd, T v_scale, bool first) {
  T* const m_out = InPlace ? m : om;
  T* const v_out = InPlace ? v : ov;
  for (size_t i = 0; i < n; ++i) {
    const T grad = g[i] + wd * p[i];  // coupled L2 weight decay, as the course
    const T mi = (!InPlace && first ? T(0) : b1 * m[i]) + (T(1) - b1) * grad;
    const T vi = (!InPlace && first ? T(0) : b2 * v[i]) + (T(1) - b2) * grad * grad;
    m_out[i] = mi;
    v_out[i] = vi;
    op[i] = p[i] - lr_t * mi / (std::sqrt(vi) * v_scale + eps);
  }
}

/// New (param, m, v) into (out_p, out_m, out_v): the same formula as needle.optim.Adam, in one pass.
inline void AdamStep(const AlignedArray& p, const AlignedArray& g, const AlignedArray& m, const AlignedArray& v,
                     AlignedArray* out_p, AlignedArray* out_m, AlignedArray* out_v, const AdamConfig& c) {
  for (const AlignedArray* a : {&g, &m, &v, static_cast<const AlignedArray*>(out_p),
                                static_cast<const AlignedArray*>(out_m), static_cast<const AlignedArray*>(out_v)}) {
    same_dtype("adam_step", p, *a);
    NEEDLE_REQUIRE(a->size == p.size, "adam_step: operand sizes differ (" + std::to_string(a->size) + " vs parameter " +
                                          std::to_string(p.size) + ")");
  }
  NEEDLE_REQUIRE(c.bias1 > 0 && c.bias2 > 0, "adam_step: bias corrections must be positive (t >= 1)");
  dispatch(p.dtype, [&](auto t) {
    using T = decltype(t);
    const T lr_t = static_cast<T>(c.lr / c.bias1), v_scale = static_cast<T>(1.0 / std::sqrt(c.bias2));
    const bool in_place = out_m == &m && out_v == &v && !c.first;
    parallel_for(p.size, 8, [&](size_t i0, size_t i1) {
      const auto loop = in_place ? adam_loop<T, true> : adam_loop<T, false>;
      loop(p.data<T>() + i0, g.data<T>() + i0, m.data<T>() + i0, v.data<T>() + i0, out_p->data<T>() + i0,
           out_m->data<T>() + i0, out_v->data<T>() + i0, i1 - i0, lr_t, T(c.beta1), T(c.beta2), T(c.eps),
           T(c.weight_decay), v_scale, c.first);
    });
  });
}

}  // namespace cpu
}  // namespace needle
