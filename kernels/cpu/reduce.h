// Reductions of a compact (outer, reduce, inner) block over its middle axis.
#pragma once

#include <cmath>
#include <cstring>
#include <type_traits>

#include "common.h"
#include "elementwise.h"

namespace needle {
namespace cpu {

constexpr size_t REDUCE_LANES = 32;  // independent accumulators: vectorises without reassociation
constexpr size_t REDUCE_BLOCK = 2048;  // sums of this many elements are then added in double precision

/// op-reduction of x[0..n), n >= 1, with REDUCE_LANES interleaved partial results (as vectors where
/// VECTOR_LOOPS: see elementwise.h; the order of operations, so the result, is the same either way).
/// Max of x[0..n), n >= 2 * REDUCE_LANES, in one max instruction per vector: lanes keep the larger without
/// testing for NaN, while `probe` adds up x * 0, which turns NaN exactly when an inf or a NaN went by.
/// Returns false in that (rare) case, for the caller to redo the block with the NaN-propagating Max.
template <typename T>
NEEDLE_CLONES bool max_block_finite(const T* x, size_t n, T* result) {
  T lanes[REDUCE_LANES], probe[REDUCE_LANES] = {};
  size_t i = REDUCE_LANES;
  if constexpr (VECTOR_LOOPS) {
    typedef T V __attribute__((vector_size(VBYTES)));
    constexpr size_t L = VBYTES / sizeof(T), NV = REDUCE_LANES / L;
    V acc[NV], pr[NV] = {};
    for (size_t v = 0; v < NV; ++v) acc[v] = vload<V>(x + v * L);
    for (; i + REDUCE_LANES <= n; i += REDUCE_LANES)
      for (size_t v = 0; v < NV; ++v) {
        const V xv = vload<V>(x + i + v * L);
        acc[v] = select(xv > acc[v], xv, acc[v]);
        pr[v] += xv * T(0);
      }
    std::memcpy(lanes, acc, sizeof lanes);
    std::memcpy(probe, pr, sizeof probe);
  } else {
    for (size_t j = 0; j < REDUCE_LANES; ++j) lanes[j] = x[j];
    for (; i + REDUCE_LANES <= n; i += REDUCE_LANES)
      for (size_t j = 0; j < REDUCE_LANES; ++j) {
        lanes[j] = x[i + j] > lanes[j] ? x[i + j] : lanes[j];
        probe[j] += x[i + j] * T(0);
      }
  }
  T acc = lanes[0], bad = probe[0] + lanes[0] * T(0);
  for (size_t j = 1; j < REDUCE_LANES; ++j) {
    acc = std::max(acc, lanes[j]);
    bad += probe[j] + lanes[j] * T(0);
  }
  for (; i < n; ++i) {
    acc = std::max(acc, x[i]);
    bad += x[i] * T(0);
  }
  *result = acc;
  return bad == bad;
}

template <typename T, typename Op>
NEEDLE_CLONES T reduce_block(const T* x, size_t n, Op op) {
  if constexpr (std::is_same<Op, Max>::value) {
    T result;
    if (n >= 2 * REDUCE_LANES && max_block_finite(x, n, &result)) return result;
  }
  if (n < 2 * REDUCE_LANES) {
    T acc = x[0];
    for (size_t i = 1; i < n; ++i) acc = op(acc, x[i]);
    return acc;
  }
  T lanes[REDUCE_LANES];
  size_t i = REDUCE_LANES;
  if constexpr (VECTOR_LOOPS) {
    typedef T V __attribute__((vector_size(VBYTES)));
    constexpr size_t L = VBYTES / sizeof(T), NV = REDUCE_LANES / L;
    V acc[NV];
    for (size_t v = 0; v < NV; ++v) acc[v] = vload<V>(x + v * L);
    for (; i + REDUCE_LANES <= n; i += REDUCE_LANES)
      for (size_t v = 0; v < NV; ++v) acc[v] = op(acc[v], vload<V>(x + i + v * L));
    std::memcpy(lanes, acc, sizeof lanes);
  } else {
    for (size_t j = 0; j < REDUCE_LANES; ++j) lanes[j] = x[j];
    for (; i + REDUCE_LANES <= n; i += REDUCE_LANES)
      for (size_t j = 0; j < REDUCE_LANES; ++j) lanes[j] = op(lanes[j], x[i + j]);
  }
  T acc = lanes[0];
  for (size_t j = 1; j < REDUCE_LANES; ++j) acc = op(acc, lanes[j]);
  for (; i < n; ++i) acc = op(acc, x[i]);
  return acc;
}

/// Reduction of a contiguous row: sums add blocks in double so error does not grow with the length.
template <typename T, typename Op>
T reduce_row(const T* x, size_t n, Op op) {
  if (!std::is_same<Op, Add>::value) return reduce_block(x, n, op);
  double total = 0.0;
  for (size_t i = 0; i < n; i += REDUCE_BLOCK) total += reduce_block(x + i, std::min(REDUCE_BLOCK, n - i), op);
  return static_cast<T>(total);
}

/// acc[i] = op(acc[i], x[r * stride + i]) over `rows` rows, four rows per pass (a quarter of the
/// accumulator traffic of one row at a time).
template <typename T, typename Op>
NEEDLE_CLONES void combine_rows(T* acc, const T* x, size_t stride, size_t rows, size_t n, Op op) {
  typedef T V __attribute__((vector_size(VBYTES)));
  constexpr size_t L = VBYTES / sizeof(T);  // (the vector loops are compiled out under GCC on x86-64)
  size_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const T *x0 = x + r * stride, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
    size_t i = 0;
    if constexpr (VECTOR_LOOPS)
      for (; i + L <= n; i += L)
        vstore(acc + i, op(vload<V>(acc + i), op(op(vload<V>(x0 + i), vload<V>(x1 + i)), op(vload<V>(x2 + i), vload<V>(x3 + i)))));
    for (; i < n; ++i) acc[i] = op(acc[i], op(op(x0[i], x1[i]), op(x2[i], x3[i])));
  }
  for (; r < rows; ++r) {
    const T* xr = x + r * stride;
    size_t i = 0;
    if constexpr (VECTOR_LOOPS)
      for (; i + L <= n; i += L) vstore(acc + i, op(vload<V>(acc + i), vload<V>(xr + i)));
    for (; i < n; ++i) acc[i] = op(acc[i], xr[i]);
  }
}

template <typename Op>
void reduce_axis(const char* name, const AlignedArray& a, AlignedArray* out, size_t outer, size_t reduce,
                 size_t inner, Op op) {
  same_dtype(name, a, *out);
  NEEDLE_REQUIRE(reduce > 0, std::string(name) + ": cannot reduce over an empty axis");
  size_t total, kept;
  NEEDLE_REQUIRE(!__builtin_mul_overflow(outer, inner, &kept) && !__builtin_mul_overflow(kept, reduce, &total),
                 std::string(name) + ": sizes overflow");
  size_at_least(name, "input", a, total);
  size_at_least(name, "out", *out, kept);
  if (kept == 0) return;
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    const T* x = a.data<T>();
    T* z = out->data<T>();
    if (inner == 1 && outer < static_cast<size_t>(threads_for(total))) {
      // few long rows: split each row across the threads, then combine the partial results
      for (size_t o = 0; o < outer; ++o) {
        const T* row = x + o * reduce;
        const int parts = threads_for(reduce);  // > 1 only for rows far longer than the team
        std::vector<T> partial(parts);
#pragma omp parallel for num_threads(parts) if (parts > 1)
        for (int p = 0; p < parts; ++p) {
          const size_t r0 = reduce * p / parts, r1 = reduce * (p + 1) / parts;
          partial[p] = reduce_row(row + r0, r1 - r0, op);
        }
        T acc = partial[0];
        for (int p = 1; p < parts; ++p) acc = op(acc, partial[p]);
        z[o] = acc;
      }
    } else if (inner == 1) {
      parallel_for(outer, reduce, [&](size_t o0, size_t o1) {
        for (size_t o = o0; o < o1; ++o) z[o] = reduce_row(x + o * reduce, reduce, op);
      });
    } else {
      // columns: accumulate whole rows of `inner` elements; work items are (outer, column chunk)
      const size_t chunk = std::max<size_t>(inner / (4 * threads_for(total)), 1024);  // a few per thread
      const size_t chunks = (inner + chunk - 1) / chunk;
      parallel_for(outer * chunks, reduce * chunk, [&](size_t w0, size_t w1) {
        for (size_t w = w0; w < w1; ++w) {
          const size_t o = w / chunks, i0 = (w % chunks) * chunk, len = std::min(chunk, inner - i0);
          const T* xo = x + o * reduce * inner + i0;
          T* zo = z + o * inner + i0;
          std::copy(xo, xo + len, zo);
          combine_rows(zo, xo + inner, inner, reduce - 1, len, op);
        }
      });
    }
  });
}

inline void ReduceSumAxis(const AlignedArray& a, AlignedArray* out, size_t outer, size_t reduce, size_t inner) {
  reduce_axis("reduce_sum", a, out, outer, reduce, inner, Add{});
}
inline void ReduceMaxAxis(const AlignedArray& a, AlignedArray* out, size_t outer, size_t reduce, size_t inner) {
  reduce_axis("reduce_max", a, out, outer, reduce, inner, Max{});
}

/// The course's reduce_sum/reduce_max: each consecutive block of reduce_size elements becomes one.
template <typename Reduce>
void reduce_blocks(const char* name, const AlignedArray& a, AlignedArray* out, size_t reduce_size, Reduce r) {
  NEEDLE_REQUIRE(reduce_size > 0, std::string(name) + ": reduce_size must be > 0");
  NEEDLE_REQUIRE(a.size % reduce_size == 0, std::string(name) + ": input of " + std::to_string(a.size) +
                                                " elements is not a whole number of blocks of " +
                                                std::to_string(reduce_size));
  r(a, out, a.size / reduce_size, reduce_size, 1);
}

}  // namespace cpu
}  // namespace needle
