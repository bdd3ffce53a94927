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

template <typename T>
NEEDLE_CLONES void adam_loop(const T* p, const T* g, const T* m, const T* v, T* op, T* om, T* ov, size_t n,
                             T lr_t, T b1, T b2, T eps, T wd, T v_scale, bool first) {
  for (size_t i = 0; i < n; ++i) {
    const T grad = g[i] + wd * p[i];  // coupled L2 weight decay, as the course
    const T mi = (first ? T(0) : b1 * m[i]) + (T(1) - b1) * grad;
    const T vi = (first ? T(0) : b2 * v[i]) + (T(1) - b2) * grad * grad;
    om[i] = mi;
    ov[i] = vi;
    op[i] = p[i] - lr_t * mi / (std::sqrt(vi) * v_scale + eps);
  }
}

/// The same with the moments updated in place (out_m is m, out_v is v): m and v are then one pointer each, so
/// the compiler sees no overlap to guard against and keeps the loop vectorised.
template <typename T>
NEEDLE_CLONES void adam_loop_in_place(const T* p, const T* g, T* m, T* v, T* op, size_t n, T lr_t, T b1, T b2, T eps,
                                      T wd, T v_scale) {
  for (size_t i = 0; i < n; ++i) {
    const T grad = g[i] + wd * p[i];
    const T mi = b1 * m[i] + (T(1) - b1) * grad;
    const T vi = b2 * v[i] + (T(1) - b2) * grad * grad;
    m[i] = mi;
    v[i] = vi;
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
      if (in_place)
        adam_loop_in_place<T>(p.data<T>() + i0, g.data<T>() + i0, out_m->data<T>() + i0, out_v->data<T>() + i0,
                              out_p->data<T>() + i0, i1 - i0, lr_t, T(c.beta1), T(c.beta2), T(c.eps),
                              T(c.weight_decay), v_scale);
      else
        adam_loop<T>(p.data<T>() + i0, g.data<T>() + i0, m.data<T>() + i0, v.data<T>() + i0, out_p->data<T>() + i0,
                     out_m->data<T>() + i0, out_v->data<T>() + i0, i1 - i0, lr_t, T(c.beta1), T(c.beta2), T(c.eps),
                     T(c.weight_decay), v_scale, c.first);
    });
  });
}

}  // namespace cpu
}  // namespace needle
