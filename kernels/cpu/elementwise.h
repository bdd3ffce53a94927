// Elementwise and scalar kernels: one vector loop per op, multi-versioned on x86-64, split across threads.
#pragma once

#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

#include "common.h"
#include "vmath.h"

namespace needle {
namespace cpu {

// Each op works on a scalar T and on a vector of T alike (GCC/Clang vector extensions). The loops below
// run one-register vectors (16 bytes: NEON on ARM64, SSE2 on x86-64), VUNROLL at a time, instead of
// relying on each compiler's auto-vectoriser (clang left reduce_max scalar on ARM64). Not under GCC on
// x86-64: there the plain loops are auto-vectorised into each target_clones copy at its full width (AVX2,
// AVX-512), which a fixed vector width in the source cannot do (GCC turns the comparisons of a vector wider
// than the target's registers into scalar code).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
constexpr bool VECTOR_LOOPS = false;
#else
constexpr bool VECTOR_LOOPS = true;
#endif
constexpr size_t VBYTES = 16;
constexpr size_t VUNROLL = 4;

template <typename V, typename T>
NEEDLE_INLINE V vload(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename V, typename T>
NEEDLE_INLINE void vstore(T* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

/// The element type of a vector (T itself for a scalar).
template <typename T, typename = void>
struct elem { using type = T; };
template <typename V>
struct elem<V, std::void_t<decltype(std::declval<V>()[0])>> { using type = std::decay_t<decltype(std::declval<V>()[0])>; };

/// `c` where the mask is set (all bits: a vector comparison), else `d`; for scalars, plain ?:.
template <typename T, typename M>
NEEDLE_INLINE T select(M mask, T c, T d) {
  if constexpr (std::is_arithmetic<T>::value) {
    return mask ? c : d;
  } else {
    return (T)((mask & (M)c) | (~mask & (M)d));
  }
}

/// The value v in every lane of T (or v itself for a scalar).
template <typename T>
NEEDLE_INLINE T splat(double v) {
  using E = typename elem<T>::type;
  if constexpr (std::is_arithmetic<T>::value) return E(v);
  else return T{} + E(v);
}

struct Add { template <typename T> NEEDLE_INLINE T operator()(T x, T y) const { return x + y; } };
struct Mul { template <typename T> NEEDLE_INLINE T operator()(T x, T y) const { return x * y; } };
struct Div { template <typename T> NEEDLE_INLINE T operator()(T x, T y) const { return x / y; } };
/// x ** y; squaring (losses, norms) is exact as a product and far cheaper than pow. Scalar only.
struct Pow {
  static constexpr bool scalar_only = true;
  template <typename T> T operator()(T x, T y) const { return y == T(2) ? x * x : std::pow(x, y); }
};
/// numpy's maximum: a NaN in either operand gives NaN.
struct Max { template <typename T> NEEDLE_INLINE T operator()(T x, T y) const { return select((x > y) | (x != x), x, y); } };
struct Eq { template <typename T> NEEDLE_INLINE T operator()(T x, T y) const { return select(x == y, splat<T>(1), splat<T>(0)); } };
struct Ge { template <typename T> NEEDLE_INLINE T operator()(T x, T y) const { return select(x >= y, splat<T>(1), splat<T>(0)); } };

/// Whether an op has a vector form (all but Pow).
template <typename Op, typename = void>
struct vectorised : std::true_type {};
template <typename Op>
struct vectorised<Op, std::void_t<decltype(Op::scalar_only)>> : std::false_type {};

template <typename T, typename Op>
NEEDLE_CLONES void binary_loop(const T* x, const T* y, T* z, size_t n, Op op) {
  size_t i = 0;
  if constexpr (VECTOR_LOOPS && vectorised<Op>::value) {
    typedef T V __attribute__((vector_size(VBYTES)));
    constexpr size_t L = VBYTES / sizeof(T);
    for (; i + VUNROLL * L <= n; i += VUNROLL * L)
      for (size_t u = 0; u < VUNROLL; ++u) vstore(z + i + u * L, op(vload<V>(x + i + u * L), vload<V>(y + i + u * L)));
  }
  for (; i < n; ++i) z[i] = op(x[i], y[i]);
}

template <typename T, typename Op>
NEEDLE_CLONES void scalar_loop(const T* x, T v, T* z, size_t n, Op op) {
  size_t i = 0;
  if constexpr (VECTOR_LOOPS && vectorised<Op>::value) {
    typedef T V __attribute__((vector_size(VBYTES)));
    constexpr size_t L = VBYTES / sizeof(T);
    const V b = V{} + v;
    for (; i + VUNROLL * L <= n; i += VUNROLL * L)
      for (size_t u = 0; u < VUNROLL; ++u) vstore(z + i + u * L, op(vload<V>(x + i + u * L), b));
  }
  for (; i < n; ++i) z[i] = op(x[i], v);
}

template <typename Op>
void ewise_binary(const char* name, const AlignedArray& a, const AlignedArray& b, AlignedArray* out, Op op) {
  same_dtype(name, a, b);
  same_dtype(name, a, *out);
  NEEDLE_REQUIRE(a.size == b.size && a.size == out->size, std::string(name) + ": operand sizes differ (" +
                                                              std::to_string(a.size) + ", " + std::to_string(b.size) +
                                                              ", out " + std::to_string(out->size) + ")");
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    const T *x = a.data<T>(), *y = b.data<T>();
    T* z = out->data<T>();
    parallel_for(a.size, 1, [&](size_t i0, size_t i1) { binary_loop(x + i0, y + i0, z + i0, i1 - i0, op); });
  });
}

template <typename Op>
void scalar_binary(const char* name, const AlignedArray& a, double val, AlignedArray* out, Op op) {
  same_dtype(name, a, *out);
  NEEDLE_REQUIRE(a.size == out->size, std::string(name) + ": operand sizes differ (" + std::to_string(a.size) +
                                          ", out " + std::to_string(out->size) + ")");
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    const T* x = a.data<T>();
    const T v = static_cast<T>(val);
    T* z = out->data<T>();
    parallel_for(a.size, 1, [&](size_t i0, size_t i1) { scalar_loop(x + i0, v, z + i0, i1 - i0, op); });
  });
}

/// Unary math: float32 uses the vectorised kernels of vmath.h, float64 the C library.
template <typename F32, typename F64>
void ewise_unary(const char* name, const AlignedArray& a, AlignedArray* out, F32 f32, F64 f64) {
  same_dtype(name, a, *out);
  NEEDLE_REQUIRE(a.size == out->size, std::string(name) + ": operand sizes differ (" + std::to_string(a.size) +
                                          ", out " + std::to_string(out->size) + ")");
  // transcendental functions cost ~10x a copy per element: go parallel earlier (cost 8)
  if (a.dtype == DType::f32) {
    const float* x = a.data<float>();
    float* z = out->data<float>();
    parallel_for(a.size, 8, [&](size_t i0, size_t i1) { f32(x + i0, z + i0, i1 - i0); });
  } else {
    const double* x = a.data<double>();
    double* z = out->data<double>();
    parallel_for(a.size, 8, [&](size_t i0, size_t i1) {
      for (size_t i = i0; i < i1; ++i) z[i] = f64(x[i]);
    });
  }
}

}  // namespace cpu
}  // namespace needle
