// Strided copies: compact (gather a view into a dense buffer), ewise/scalar setitem (scatter into a view).
#pragma once

#include <cstring>

#include "common.h"

namespace needle {
namespace cpu {

/// A strided view with size-1 axes dropped and axes that step through memory as one merged, so the
/// innermost loop is as long as possible (a compact array becomes a single row).
struct Layout {
  Shape shape, strides;
  int64_t offset;
};

inline Layout simplify(const Shape& shape, const Shape& strides, int64_t offset) {
  Layout out{{}, {}, offset};
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    if (!out.shape.empty() && out.strides.back() == shape[i] * strides[i]) {
      out.shape.back() *= shape[i];
      out.strides.back() = strides[i];
    } else {
      out.shape.push_back(shape[i]);
      out.strides.push_back(strides[i]);
    }
  }
  if (out.shape.empty()) {  // a single element
    out.shape.push_back(1);
    out.strides.push_back(1);
  }
  return out;
}

/// Calls row(pos, flat, len, stride) for every innermost row of the view, in row-major order:
/// `pos` is the row's first element in the strided buffer, `flat` its index in the dense order.
/// Rows are shared out across threads when the view is large.
template <typename Row>
void for_each_row(const Layout& v, Row row) {
  const size_t nd = v.shape.size();
  const size_t len = static_cast<size_t>(v.shape[nd - 1]);
  const int64_t stride = v.strides[nd - 1];
  size_t rows = 1;
  for (size_t d = 0; d + 1 < nd; ++d) rows *= static_cast<size_t>(v.shape[d]);
  parallel_for(rows, len, [&](size_t r0, size_t r1) {
    if (r0 >= r1) return;
    // the multi-index and buffer position of row r0
    std::vector<int64_t> idx(nd, 0);
    int64_t pos = v.offset;
    for (size_t d = nd - 1, rest = r0; d-- > 0;) {
      idx[d] = static_cast<int64_t>(rest % v.shape[d]);
      rest /= v.shape[d];
      pos += idx[d] * v.strides[d];
    }
    for (size_t r = r0; r < r1; ++r) {
      row(pos, r * len, len, stride);
      for (size_t d = nd - 1; d-- > 0;) {  // advance the outer multi-index
        pos += v.strides[d];
        if (++idx[d] < v.shape[d]) break;
        pos -= v.strides[d] * v.shape[d];
        idx[d] = 0;
      }
    }
  });
}

template <typename T>
inline void gather_row(const T* src, int64_t stride, T* dst, size_t len) {
  if (stride == 1) {
    std::memcpy(dst, src, len * sizeof(T));
  } else {
    for (size_t j = 0; j < len; ++j) dst[j] = src[static_cast<int64_t>(j) * stride];
  }
}

template <typename T>
inline void scatter_row(const T* src, T* dst, int64_t stride, size_t len) {
  if (stride == 1) {
    std::memmove(dst, src, len * sizeof(T));
  } else {
    for (size_t j = 0; j < len; ++j) dst[static_cast<int64_t>(j) * stride] = src[j];
  }
}

/// dst[0..n) = the view's elements in row-major order.
template <typename T>
void gather(const T* src, T* dst, const Shape& shape, const Shape& strides, int64_t offset) {
  if (prod(shape) == 0) return;
  for_each_row(simplify(shape, strides, offset),
               [&](int64_t pos, size_t flat, size_t len, int64_t st) { gather_row(src + pos, st, dst + flat, len); });
}

inline void Compact(const AlignedArray& a, AlignedArray* out, Shape shape, Shape strides, int64_t offset) {
  same_dtype("compact", a, *out);
  check_view("compact", a, shape, strides, offset);
  size_at_least("compact", "out", *out, prod(shape));
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    gather(a.data<T>(), out->data<T>(), shape, strides, offset);
  });
}

inline void EwiseSetitem(const AlignedArray& a, AlignedArray* out, Shape shape, Shape strides, int64_t offset) {
  same_dtype("ewise_setitem", a, *out);
  check_view("ewise_setitem", *out, shape, strides, offset);
  size_at_least("ewise_setitem", "source", a, prod(shape));
  if (prod(shape) == 0) return;
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    const T* src = a.data<T>();
    T* dst = out->data<T>();
    for_each_row(simplify(shape, strides, offset), [&](int64_t pos, size_t flat, size_t len, int64_t st) {
      scatter_row(src + flat, dst + pos, st, len);
    });
  });
}

inline void ScalarSetitem(size_t size, double val, AlignedArray* out, Shape shape, Shape strides, int64_t offset) {
  check_view("scalar_setitem", *out, shape, strides, offset);
  NEEDLE_REQUIRE(size == prod(shape), "scalar_setitem: size " + std::to_string(size) + " does not match the view's " +
                                          std::to_string(prod(shape)) + " elements");
  if (size == 0) return;
  dispatch(out->dtype, [&](auto t) {
    using T = decltype(t);
    T* dst = out->data<T>();
    const T v = static_cast<T>(val);
    for_each_row(simplify(shape, strides, offset), [&](int64_t pos, size_t, size_t len, int64_t st) {
      for (size_t j = 0; j < len; ++j) dst[pos + static_cast<int64_t>(j) * st] = v;
    });
  });
}

/// Fills the whole buffer with `val` (in parallel when large: it is also the first touch of new memory).
inline void Fill(AlignedArray* out, double val) {
  dispatch(out->dtype, [&](auto t) {
    using T = decltype(t);
    T* dst = out->data<T>();
    const T v = static_cast<T>(val);
    parallel_for(out->size, 1, [&](size_t i0, size_t i1) { std::fill(dst + i0, dst + i1, v); });
  });
}

}  // namespace cpu
}  // namespace needle
