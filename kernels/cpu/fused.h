// Fused kernels behind needle/ops/ops_fused.py: embedding gather/scatter-add, softmax cross-entropy,
// sigmoid, batch and layer normalization, the LSTM cell. Each replaces some five to fifteen elementwise
// kernels (and their broadcast copies) with one pass over the data. The device contract (names, argument
// order) is documented in needle/backend_ndarray/fused.py.
//
// Integer ids and labels arrive as a buffer of the values' dtype holding whole numbers (NDArray stores
// float32/float64 only); each is checked: out of range raises IndexError, a fraction raises ValueError.
#pragma once

#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "common.h"
#include "vmath.h"

namespace needle {
namespace cpu {
namespace fused {

inline void same_dtypes(const char* op, std::initializer_list<const AlignedArray*> arrays) {
  const AlignedArray* first = *arrays.begin();
  for (const AlignedArray* a : arrays) same_dtype(op, *first, *a);
}

/// The product of two sizes, or an error naming the op when it overflows.
inline size_t checked_mul(const char* op, size_t a, size_t b) {
  size_t r;
  NEEDLE_REQUIRE(!__builtin_mul_overflow(a, b, &r), std::string(op) + ": sizes overflow");
  return r;
}

inline void distinct(const char* op, const AlignedArray* out, std::initializer_list<const AlignedArray*> ins) {
  for (const AlignedArray* a : ins) NEEDLE_REQUIRE(out != a, std::string(op) + ": an output buffer is also an input");
}

/// Every id is a whole number in [0, num): IndexError (std::out_of_range) or ValueError otherwise.
template <typename T>
void check_ids(const char* op, const char* what, const T* ids, size_t n, size_t num) {
  for (size_t i = 0; i < n; ++i) {
    const T v = ids[i];
    if (!(v >= T(0) && static_cast<double>(v) < static_cast<double>(num))) {
      std::ostringstream msg;
      msg << op << ": " << what << " " << static_cast<double>(v) << " (at " << i << ") outside [0, " << num << ")";
      throw std::out_of_range(msg.str());
    }
    if (v != std::floor(v)) {
      std::ostringstream msg;
      msg << op << ": " << what << " must be whole numbers, got " << static_cast<double>(v) << " (at " << i << ")";
      throw std::invalid_argument(msg.str());
    }
  }
}

// tanh over a run: the vectorised float32 kernel of vmath.h, the C library for float64.
inline void tanh_run(const float* x, float* z, size_t n) { vmath::tanh_f32(x, z, n); }
inline void tanh_run(const double* x, double* z, size_t n) {
  for (size_t i = 0; i < n; ++i) z[i] = std::tanh(x[i]);
}
inline void exp_run(const float* x, float* z, size_t n) { vmath::exp_f32(x, z, n); }
inline void exp_run(const double* x, double* z, size_t n) {
  for (size_t i = 0; i < n; ++i) z[i] = std::exp(x[i]);
}

// ---------------------------------------------------------------------------------------------------
// Embedding: out[r, :] = weight[ids[r], :] and its adjoint, out[ids[r], :] += grad[r, :].

inline void EmbeddingGather(const AlignedArray& weight, const AlignedArray& ids, AlignedArray* out, size_t n_ids,
                            size_t num, size_t dim) {
  const char* op = "embedding_gather";
  same_dtypes(op, {&weight, &ids, out});
  size_at_least(op, "weight", weight, checked_mul(op, num, dim));
  size_at_least(op, "ids", ids, n_ids);
  size_at_least(op, "out", *out, checked_mul(op, n_ids, dim));
  distinct(op, out, {&weight, &ids});
  dispatch(weight.dtype, [&](auto t) {
    using T = decltype(t);
    const T* id = ids.data<T>();
    check_ids(op, "id", id, n_ids, num);
    const T* w = weight.data<T>();
    T* o = out->data<T>();
    parallel_for(n_ids, dim, [&](size_t r0, size_t r1) {  // a copy of one row per id
      for (size_t r = r0; r < r1; ++r) std::memcpy(o + r * dim, w + static_cast<size_t>(id[r]) * dim, dim * sizeof(T));
    });
  });
}

inline void EmbeddingScatterAdd(const AlignedArray& grad, const AlignedArray& ids, AlignedArray* out, size_t n_ids,
                                size_t num, size_t dim) {
  const char* op = "embedding_scatter_add";
  same_dtypes(op, {&grad, &ids, out});
  size_at_least(op, "grad", grad, checked_mul(op, n_ids, dim));
  size_at_least(op, "ids", ids, n_ids);
  size_at_least(op, "out", *out, checked_mul(op, num, dim));
  distinct(op, out, {&grad, &ids});
  dispatch(grad.dtype, [&](auto t) {
    using T = decltype(t);
    const T* id = ids.data<T>();
    check_ids(op, "id", id, n_ids, num);
    const T* g = grad.data<T>();
    T* o = out->data<T>();
    parallel_for(num * dim, 1, [&](size_t i0, size_t i1) { std::memset(o + i0, 0, (i1 - i0) * sizeof(T)); });
    // threads split the columns, so no two write one element and rows add in id order (deterministic)
    parallel_for(dim, n_ids, [&](size_t d0, size_t d1) {
      for (size_t r = 0; r < n_ids; ++r) {
        T* dst = o + static_cast<size_t>(id[r]) * dim;
        const T* src = g + r * dim;
        for (size_t d = d0; d < d1; ++d) dst[d] += src[d];
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// Softmax cross-entropy over rows of logits (m, k) with labels (m,):
//   lse[i] = log sum_j exp(z[i, j]),  loss[i] = lse[i] - z[i, label[i]]
//   grad[i, j] = g / m * (exp(z[i, j] - lse[i]) - [j == label[i]])   (g: the 1-element adjoint)

/// The largest element of a row (k >= 1), in sixteen running maxima (vectorisable); NaNs are skipped
/// here and come back through the sum of exponentials.
template <typename T>
NEEDLE_CLONES T row_max(const T* x, size_t k) {
  T acc[16];
  for (size_t u = 0; u < 16; ++u) acc[u] = x[0];
  size_t j = 0;
  for (; j + 16 <= k; j += 16)
    for (size_t u = 0; u < 16; ++u) acc[u] = x[j + u] > acc[u] ? x[j + u] : acc[u];
  for (; j < k; ++j) acc[0] = x[j] > acc[0] ? x[j] : acc[0];
  T m = acc[0];
  for (size_t u = 1; u < 16; ++u) m = acc[u] > m ? acc[u] : m;
  return m;
}

template <typename T>
NEEDLE_CLONES void shift_row(const T* x, T s, T* z, size_t k) {
  for (size_t j = 0; j < k; ++j) z[j] = x[j] - s;
}

template <typename T>
NEEDLE_CLONES double row_sum(const T* x, size_t k) {
  T acc[8] = {};  // eight partial sums: vectorisable, and more accurate than one running sum
  size_t j = 0;
  for (; j + 8 <= k; j += 8)
    for (size_t u = 0; u < 8; ++u) acc[u] += x[j + u];
  double s = 0;
  for (size_t u = 0; u < 8; ++u) s += acc[u];
  for (; j < k; ++j) s += x[j];
  return s;
}

template <typename T>
NEEDLE_CLONES void scale_row(T* z, T s, size_t k) {
  for (size_t j = 0; j < k; ++j) z[j] *= s;
}

// float32 rows: exp(x - shift) sixteen lanes at a time straight from the logits, summed in registers
// (forward: nothing written) or scaled into the output (gradient); the tail goes through a padded block.
// (The bodies are always-inline helpers under the multi-versioned entry points: clang checks vector
// arguments against the features of the function it is emitting, and a 64-byte vector passed straight
// from the AVX2 copy would be an ABI error there.)
NEEDLE_INLINE double exp_sum_f32_body(const float* x, float shift, size_t k) {
  vmath::vf acc = {};
  size_t j = 0;
  for (; j + vmath::LANES <= k; j += vmath::LANES) {
    vmath::vf v;
    std::memcpy(&v, x + j, sizeof v);
    acc += vmath::v_exp(v - shift);
  }
  if (j < k) {
    vmath::vf v = vmath::vf{} - __builtin_inff();  // exp(-inf) = 0 in the unused lanes
    std::memcpy(&v, x + j, (k - j) * sizeof(float));
    acc += vmath::v_exp(v - shift);
  }
  double s = 0;
  for (size_t u = 0; u < vmath::LANES; ++u) s += acc[u];
  return s;
}

NEEDLE_INLINE void exp_scale_f32_body(const float* x, float shift, float scale, float* out, size_t k) {
  size_t j = 0;
  for (; j + vmath::LANES <= k; j += vmath::LANES) {
    vmath::vf v;
    std::memcpy(&v, x + j, sizeof v);
    v = vmath::v_exp(v - shift) * scale;
    std::memcpy(out + j, &v, sizeof v);
  }
  if (j < k) {
    vmath::vf v = vmath::vf{};
    std::memcpy(&v, x + j, (k - j) * sizeof(float));
    v = vmath::v_exp(v - shift) * scale;
    std::memcpy(out + j, &v, (k - j) * sizeof(float));
  }
}

NEEDLE_CLONES_FN inline double exp_sum_f32(const float* x, float shift, size_t k) {
  return exp_sum_f32_body(x, shift, k);
}
NEEDLE_CLONES_FN inline void exp_scale_f32(const float* x, float shift, float scale, float* out, size_t k) {
  exp_scale_f32_body(x, shift, scale, out, k);
}

/// sum_j exp(x[j] - shift) over a row; `scratch` holds k elements (used by float64 only).
inline double exp_sum(const float* x, float shift, size_t k, float*) { return exp_sum_f32(x, shift, k); }
inline double exp_sum(const double* x, double shift, size_t k, double* scratch) {
  shift_row(x, shift, scratch, k);
  exp_run(scratch, scratch, k);
  return row_sum(scratch, k);
}

/// out[j] = exp(x[j] - shift) * scale.
inline void exp_scale(const float* x, float shift, float scale, float* out, size_t k) {
  exp_scale_f32(x, shift, scale, out, k);
}
inline void exp_scale(const double* x, double shift, double scale, double* out, size_t k) {
  shift_row(x, shift, out, k);
  exp_run(out, out, k);
  scale_row(out, scale, k);
}

inline void SoftmaxXent(const AlignedArray& logits, const AlignedArray& labels, AlignedArray* loss, AlignedArray* lse,
                        size_t m, size_t k) {
  const char* op = "softmax_xent";
  same_dtypes(op, {&logits, &labels, loss, lse});
  NEEDLE_REQUIRE(k > 0 || m == 0, std::string(op) + ": no classes (k = 0)");
  size_at_least(op, "logits", logits, checked_mul(op, m, k));
  size_at_least(op, "labels", labels, m);
  size_at_least(op, "loss", *loss, m);
  size_at_least(op, "lse", *lse, m);
  distinct(op, loss, {&logits, &labels});
  distinct(op, lse, {&logits, &labels, loss});
  dispatch(logits.dtype, [&](auto t) {
    using T = decltype(t);
    const T* y = labels.data<T>();
    check_ids(op, "label", y, m, k);
    const T* z = logits.data<T>();
    T* lo = loss->data<T>();
    T* ls = lse->data<T>();
    parallel_for(m, k * 8, [&](size_t i0, size_t i1) {
      std::vector<T> row(std::is_same<T, double>::value ? k : 0);  // float64's scratch row
      for (size_t i = i0; i < i1; ++i) {
        const T* zi = z + i * k;
        const T top = row_max(zi, k);
        if (std::isinf(top)) {  // +inf dominates (loss inf or nan, as numpy); -inf: the whole row is -inf
          ls[i] = top;
          lo[i] = top - zi[static_cast<size_t>(y[i])];
          continue;
        }
        const T l = static_cast<T>(std::log(exp_sum(zi, top, k, row.data()))) + top;
        ls[i] = l;
        lo[i] = l - zi[static_cast<size_t>(y[i])];
      }
    });
  });
}

inline void SoftmaxXentGrad(const AlignedArray& logits, const AlignedArray& labels, const AlignedArray& lse,
                            const AlignedArray& out_grad, AlignedArray* out, size_t m, size_t k) {
  const char* op = "softmax_xent_grad";
  same_dtypes(op, {&logits, &labels, &lse, &out_grad, out});
  size_at_least(op, "logits", logits, checked_mul(op, m, k));
  size_at_least(op, "labels", labels, m);
  size_at_least(op, "lse", lse, m);
  size_at_least(op, "out_grad", out_grad, 1);
  size_at_least(op, "out", *out, checked_mul(op, m, k));
  distinct(op, out, {&logits, &labels, &lse, &out_grad});
  dispatch(logits.dtype, [&](auto t) {
    using T = decltype(t);
    const T* y = labels.data<T>();
    check_ids(op, "label", y, m, k);
    const T* z = logits.data<T>();
    const T* ls = lse.data<T>();
    T* o = out->data<T>();
    const T scale = m ? out_grad.data<T>()[0] / static_cast<T>(m) : T(0);
    parallel_for(m, k * 8, [&](size_t i0, size_t i1) {
      for (size_t i = i0; i < i1; ++i) {
        T* oi = o + i * k;
        exp_scale(z + i * k, ls[i], scale, oi, k);
        oi[static_cast<size_t>(y[i])] -= scale;
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// Sigmoid as (1 + tanh(x / 2)) / 2 (no exp to overflow), and its gradient dy * y (1 - y) from the output.

template <typename T>
NEEDLE_CLONES void half_loop(const T* x, T* z, size_t n) {
  for (size_t i = 0; i < n; ++i) z[i] = x[i] * T(0.5);
}

template <typename T>
NEEDLE_CLONES void sigmoid_finish(T* z, size_t n) {
  for (size_t i = 0; i < n; ++i) z[i] = (z[i] + T(1)) * T(0.5);
}

inline void Sigmoid(const AlignedArray& a, AlignedArray* out, size_t n) {
  const char* op = "sigmoid";
  same_dtypes(op, {&a, out});
  size_at_least(op, "a", a, n);
  size_at_least(op, "out", *out, n);
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    const T* x = a.data<T>();
    T* z = out->data<T>();
    parallel_for(n, 8, [&](size_t i0, size_t i1) {
      half_loop(x + i0, z + i0, i1 - i0);
      tanh_run(z + i0, z + i0, i1 - i0);
      sigmoid_finish(z + i0, i1 - i0);
    });
  });
}

template <typename T>
NEEDLE_CLONES void sigmoid_grad_loop(const T* y, const T* dy, T* dx, size_t n) {
  for (size_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (T(1) - y[i]);
}

inline void SigmoidGrad(const AlignedArray& y, const AlignedArray& dy, AlignedArray* out, size_t n) {
  const char* op = "sigmoid_grad";
  same_dtypes(op, {&y, &dy, out});
  size_at_least(op, "y", y, n);
  size_at_least(op, "dy", dy, n);
  size_at_least(op, "out", *out, n);
  dispatch(y.dtype, [&](auto t) {
    using T = decltype(t);
    parallel_for(n, 1, [&](size_t i0, size_t i1) {
      sigmoid_grad_loop(y.data<T>() + i0, dy.data<T>() + i0, out->data<T>() + i0, i1 - i0);
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// Batch normalization of x viewed as (outer, c, inner), statistics per channel over outer and inner
// (BatchNorm1d: (N, C, 1); BatchNorm2d: (N, C, H*W)); biased variance, as the course. Loops run in memory
// order (outer, channel, inner) with per-channel accumulators, so BatchNorm1d's inner = 1 is a
// vectorised sweep over each row instead of a strided walk down each column.

/// sum of (x - mu)^2 over a run, eight partial sums.
template <typename T>
NEEDLE_CLONES double sq_dev_sum(const T* x, T mu, size_t k) {
  T acc[8] = {};
  size_t j = 0;
  for (; j + 8 <= k; j += 8)
    for (size_t u = 0; u < 8; ++u) acc[u] += (x[j + u] - mu) * (x[j + u] - mu);
  double s = 0;
  for (size_t u = 0; u < 8; ++u) s += acc[u];
  for (; j < k; ++j) s += static_cast<double>(x[j] - mu) * (x[j] - mu);
  return s;
}

/// Per-channel sums over (outer, inner) of f(x, channel) accumulated in double, in memory order.
template <typename T, typename RowSum, typename ElemSum>
void channel_sums(const T* x, size_t outer, size_t c, size_t inner, double* out, RowSum row, ElemSum elem) {
  std::fill(out, out + c, 0.0);
  for (size_t o = 0; o < outer; ++o) {
    const T* xo = x + o * c * inner;
    if (inner == 1) {
      for (size_t ch = 0; ch < c; ++ch) out[ch] += elem(xo[ch], ch);
    } else {
      for (size_t ch = 0; ch < c; ++ch) out[ch] += row(xo + ch * inner, ch);
    }
  }
}

inline void check_channels(const char* op, const AlignedArray& x, size_t outer, size_t c, size_t inner) {
  size_at_least(op, "x", x, checked_mul(op, checked_mul(op, outer, c), inner));
  NEEDLE_REQUIRE(outer * inner > 0 || c == 0, std::string(op) + ": no elements to take statistics over");
}

inline void BatchnormStats(const AlignedArray& x, AlignedArray* mean, AlignedArray* var, size_t outer, size_t c,
                           size_t inner) {
  const char* op = "batchnorm_stats";
  same_dtypes(op, {&x, mean, var});
  check_channels(op, x, outer, c, inner);
  size_at_least(op, "mean", *mean, c);
  size_at_least(op, "var", *var, c);
  distinct(op, mean, {&x});
  distinct(op, var, {&x, mean});
  if (c == 0) return;  // no channels: nothing to do (and a huge `outer` must not be looped over)
  dispatch(x.dtype, [&](auto t) {
    using T = decltype(t);
    const T* xs = x.data<T>();
    const double n = static_cast<double>(outer * inner);
    std::vector<double> s(c), q(c);
    std::vector<T> mu(c);
    // two passes (mean, then centred squares), as numpy's var
    channel_sums(xs, outer, c, inner, s.data(), [&](const T* r, size_t) { return row_sum(r, inner); },
                 [](T v, size_t) { return static_cast<double>(v); });
    for (size_t ch = 0; ch < c; ++ch) mu[ch] = static_cast<T>(s[ch] / n);
    channel_sums(xs, outer, c, inner, q.data(), [&](const T* r, size_t ch) { return sq_dev_sum(r, mu[ch], inner); },
                 [&](T v, size_t ch) { return static_cast<double>((v - mu[ch]) * (v - mu[ch])); });
    for (size_t ch = 0; ch < c; ++ch) {
      mean->data<T>()[ch] = mu[ch];
      var->data<T>()[ch] = static_cast<T>(q[ch] / n);
    }
  });
}

/// y = (x - mu) * rstd * w + b, per channel: with inner = 1 the channel parameters are vectors along
/// the row; otherwise scalars along each run of inner elements.
template <typename T>
NEEDLE_CLONES void affine_row(const T* x, T* y, size_t c, const T* mu, const T* rstd, const T* w, const T* b) {
  for (size_t ch = 0; ch < c; ++ch) y[ch] = (x[ch] - mu[ch]) * rstd[ch] * w[ch] + b[ch];
}

template <typename T>
NEEDLE_CLONES void affine_run(const T* x, T* y, size_t n, T mu, T rstd, T w, T b) {
  for (size_t i = 0; i < n; ++i) y[i] = (x[i] - mu) * rstd * w + b;
}

/// fn(o, begin, end) over the rows o of (outer, c * inner), split across threads when large.
template <typename Fn>
void over_outer(size_t outer, size_t per_row, Fn fn) {
  parallel_for(outer, per_row, [&](size_t o0, size_t o1) {
    for (size_t o = o0; o < o1; ++o) fn(o);
  });
}

inline void BatchnormForward(const AlignedArray& x, const AlignedArray& weight, const AlignedArray& bias,
                             const AlignedArray& mean, const AlignedArray& var, AlignedArray* out, size_t outer,
                             size_t c, size_t inner, double eps) {
  const char* op = "batchnorm_forward";
  same_dtypes(op, {&x, &weight, &bias, &mean, &var, out});
  const size_t total = checked_mul(op, checked_mul(op, outer, c), inner);
  size_at_least(op, "x", x, total);
  for (const AlignedArray* a : {&weight, &bias, &mean, &var}) size_at_least(op, "a per-channel operand", *a, c);
  size_at_least(op, "out", *out, total);
  if (total == 0) return;  // an empty input: nothing to do (and a huge `outer` must not be looped over)
  dispatch(x.dtype, [&](auto t) {
    using T = decltype(t);
    const T *xs = x.data<T>(), *w = weight.data<T>(), *b = bias.data<T>(), *mu = mean.data<T>(), *v = var.data<T>();
    T* y = out->data<T>();
    std::vector<T> rstd(c);
    for (size_t ch = 0; ch < c; ++ch) rstd[ch] = T(1) / std::sqrt(v[ch] + static_cast<T>(eps));
    over_outer(outer, c * inner, [&](size_t o) {
      const size_t base = o * c * inner;
      if (inner == 1) {
        affine_row(xs + base, y + base, c, mu, rstd.data(), w, b);
      } else {
        for (size_t ch = 0; ch < c; ++ch)
          affine_run(xs + base + ch * inner, y + base + ch * inner, inner, mu[ch], rstd[ch], w[ch], b[ch]);
      }
    });
  });
}

template <typename T>
NEEDLE_CLONES void bn_dx_run(const T* x, const T* g, T* gx, size_t n, T k, T mg, T mu, T rstd, T mgx) {
  for (size_t i = 0; i < n; ++i) gx[i] = k * (g[i] - mg - (x[i] - mu) * rstd * mgx);
}

template <typename T>
NEEDLE_CLONES void bn_dx_row(const T* x, const T* g, T* gx, size_t c, const T* k, const T* mg, const T* mu,
                             const T* rstd, const T* mgx) {
  for (size_t ch = 0; ch < c; ++ch) gx[ch] = k[ch] * (g[ch] - mg[ch] - (x[ch] - mu[ch]) * rstd[ch] * mgx[ch]);
}

template <typename T>
NEEDLE_CLONES void bn_sgx_row(const T* x, const T* g, const T* mu, const T* rstd, double* acc, size_t c) {
  for (size_t ch = 0; ch < c; ++ch) acc[ch] += static_cast<double>(g[ch] * ((x[ch] - mu[ch]) * rstd[ch]));
}

template <typename T>
NEEDLE_CLONES double bn_sgx_run(const T* x, const T* g, size_t n, T mu, T rstd) {
  T acc[8] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (size_t u = 0; u < 8; ++u) acc[u] += g[i + u] * ((x[i + u] - mu) * rstd);
  double s = 0;
  for (size_t u = 0; u < 8; ++u) s += acc[u];
  for (; i < n; ++i) s += g[i] * ((x[i] - mu) * rstd);
  return s;
}

/// dx, dweight, dbias. batch_stats: mean/var are x's own batch statistics (training), so dx includes
/// their dependence on x; otherwise they are constants (eval mode) and dx = dy * weight * rstd.
inline void BatchnormBackward(const AlignedArray& x, const AlignedArray& dy, const AlignedArray& weight,
                              const AlignedArray& mean, const AlignedArray& var, AlignedArray* dx,
                              AlignedArray* dweight, AlignedArray* dbias, size_t outer, size_t c, size_t inner,
                              double eps, bool batch_stats) {
  const char* op = "batchnorm_backward";
  same_dtypes(op, {&x, &dy, &weight, &mean, &var, dx, dweight, dbias});
  check_channels(op, x, outer, c, inner);
  size_at_least(op, "dy", dy, outer * c * inner);
  size_at_least(op, "dx", *dx, outer * c * inner);
  for (const AlignedArray* a : {&weight, &mean, &var, static_cast<const AlignedArray*>(dweight),
                                static_cast<const AlignedArray*>(dbias)})
    size_at_least(op, "a per-channel operand", *a, c);
  for (AlignedArray* o : {dx, dweight, dbias}) distinct(op, o, {&x, &dy, &weight, &mean, &var});
  if (c == 0) return;  // no channels: nothing to do (and a huge `outer` must not be looped over)
  dispatch(x.dtype, [&](auto t) {
    using T = decltype(t);
    const T *xs = x.data<T>(), *g = dy.data<T>(), *w = weight.data<T>(), *mu = mean.data<T>(), *v = var.data<T>();
    T *gx = dx->data<T>(), *gw = dweight->data<T>(), *gb = dbias->data<T>();
    const double n = static_cast<double>(outer * inner);
    std::vector<T> rstd(c), k(c), mg(c), mgx(c);
    for (size_t ch = 0; ch < c; ++ch) rstd[ch] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(v[ch]) + eps));
    std::vector<double> sg(c), sgx(c);  // sum dy, sum dy * xhat per channel
    channel_sums(g, outer, c, inner, sg.data(), [&](const T* r, size_t) { return row_sum(r, inner); },
                 [](T d, size_t) { return static_cast<double>(d); });
    std::fill(sgx.begin(), sgx.end(), 0.0);
    for (size_t o = 0; o < outer; ++o) {
      const size_t base = o * c * inner;
      if (inner == 1) {
        bn_sgx_row(xs + base, g + base, mu, rstd.data(), sgx.data(), c);
      } else {
        for (size_t ch = 0; ch < c; ++ch) sgx[ch] += bn_sgx_run(xs + base + ch * inner, g + base + ch * inner, inner, mu[ch], rstd[ch]);
      }
    }
    for (size_t ch = 0; ch < c; ++ch) {
      gb[ch] = static_cast<T>(sg[ch]);
      gw[ch] = static_cast<T>(sgx[ch]);
      k[ch] = w[ch] * rstd[ch];
      mg[ch] = batch_stats ? static_cast<T>(sg[ch] / n) : T(0);
      mgx[ch] = batch_stats ? static_cast<T>(sgx[ch] / n) : T(0);
    }
    over_outer(outer, c * inner * 2, [&](size_t o) {
      const size_t base = o * c * inner;
      if (inner == 1) {
        bn_dx_row(xs + base, g + base, gx + base, c, k.data(), mg.data(), mu, rstd.data(), mgx.data());
      } else {
        for (size_t ch = 0; ch < c; ++ch) {
          const size_t r = base + ch * inner;
          bn_dx_run(xs + r, g + r, gx + r, inner, k[ch], mg[ch], mu[ch], rstd[ch], mgx[ch]);
        }
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// Layer normalization of each row of x (rows, dim); weight and bias per column. The backward pass
// recomputes each row's statistics (one more read of the row) instead of keeping them from the forward.

template <typename T>
void row_stats(const T* x, size_t dim, double eps, T* mu, T* rstd) {
  const T m = static_cast<T>(row_sum(x, dim) / static_cast<double>(dim));
  *mu = m;
  *rstd = static_cast<T>(1.0 / std::sqrt(sq_dev_sum(x, m, dim) / static_cast<double>(dim) + eps));
}

template <typename T>
NEEDLE_CLONES void ln_row(const T* x, T* y, size_t dim, T mu, T rstd, const T* w, const T* b) {
  for (size_t j = 0; j < dim; ++j) y[j] = (x[j] - mu) * rstd * w[j] + b[j];
}

inline void LayernormForward(const AlignedArray& x, const AlignedArray& weight, const AlignedArray& bias,
                             AlignedArray* out, size_t rows, size_t dim, double eps) {
  const char* op = "layernorm_forward";
  same_dtypes(op, {&x, &weight, &bias, out});
  NEEDLE_REQUIRE(dim > 0 || rows == 0, std::string(op) + ": rows of length 0");
  size_at_least(op, "x", x, checked_mul(op, rows, dim));
  size_at_least(op, "weight", weight, dim);
  size_at_least(op, "bias", bias, dim);
  size_at_least(op, "out", *out, rows * dim);
  dispatch(x.dtype, [&](auto t) {
    using T = decltype(t);
    const T *xs = x.data<T>(), *w = weight.data<T>(), *b = bias.data<T>();
    T* y = out->data<T>();
    parallel_for(rows, dim * 3, [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r) {
        T mu, rstd;
        row_stats(xs + r * dim, dim, eps, &mu, &rstd);
        ln_row(xs + r * dim, y + r * dim, dim, mu, rstd, w, b);
      }
    });
  });
}

/// One row of dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = dy * w; the two sums
/// in eight partial sums each (vectorisable without reassociating floating point).
template <typename T>
NEEDLE_CLONES void ln_dx_row(const T* x, const T* g, const T* w, T* gx, size_t dim, T mu, T rstd) {
  T sd[8] = {}, sdx[8] = {};
  size_t j = 0;
  for (; j + 8 <= dim; j += 8)
    for (size_t u = 0; u < 8; ++u) {
      const T d = g[j + u] * w[j + u];
      sd[u] += d;
      sdx[u] += d * ((x[j + u] - mu) * rstd);
    }
  for (size_t u = 1; u < 8; ++u) {
    sd[0] += sd[u];
    sdx[0] += sdx[u];
  }
  for (; j < dim; ++j) {
    const T d = g[j] * w[j];
    sd[0] += d;
    sdx[0] += d * ((x[j] - mu) * rstd);
  }
  const T md = sd[0] / static_cast<T>(dim), mdx = sdx[0] / static_cast<T>(dim);
  for (j = 0; j < dim; ++j) gx[j] = rstd * (g[j] * w[j] - md - (x[j] - mu) * rstd * mdx);
}

template <typename T>
NEEDLE_CLONES void ln_param_row(const T* x, const T* g, T* sw, T* sb, size_t dim, T mu, T rstd) {
  for (size_t j = 0; j < dim; ++j) {
    sb[j] += g[j];
    sw[j] += g[j] * ((x[j] - mu) * rstd);
  }
}

inline void LayernormBackward(const AlignedArray& x, const AlignedArray& dy, const AlignedArray& weight,
                              AlignedArray* dx, AlignedArray* dweight, AlignedArray* dbias, size_t rows, size_t dim,
                              double eps) {
  const char* op = "layernorm_backward";
  same_dtypes(op, {&x, &dy, &weight, dx, dweight, dbias});
  NEEDLE_REQUIRE(dim > 0 || rows == 0, std::string(op) + ": rows of length 0");
  size_at_least(op, "x", x, checked_mul(op, rows, dim));
  size_at_least(op, "dy", dy, rows * dim);
  size_at_least(op, "dx", *dx, rows * dim);
  for (const AlignedArray* a : {&weight, static_cast<const AlignedArray*>(dweight),
                                static_cast<const AlignedArray*>(dbias)})
    size_at_least(op, "a per-column operand", *a, dim);
  for (AlignedArray* o : {dx, dweight, dbias}) distinct(op, o, {&x, &dy, &weight});
  dispatch(x.dtype, [&](auto t) {
    using T = decltype(t);
    const T *xs = x.data<T>(), *g = dy.data<T>(), *w = weight.data<T>();
    T* gx = dx->data<T>();
    std::vector<T> mu(rows), rstd(rows);
    parallel_for(rows, dim * 4, [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r) {
        row_stats(xs + r * dim, dim, eps, &mu[r], &rstd[r]);
        ln_dx_row(xs + r * dim, g + r * dim, w, gx + r * dim, dim, mu[r], rstd[r]);
      }
    });
    // column sums over rows, in row order (deterministic)
    T* sw = dweight->data<T>();
    T* sb = dbias->data<T>();
    std::fill(sw, sw + dim, T(0));
    std::fill(sb, sb + dim, T(0));
    for (size_t r = 0; r < rows; ++r) ln_param_row(xs + r * dim, g + r * dim, sw, sb, dim, mu[r], rstd[r]);
  });
}

// ---------------------------------------------------------------------------------------------------
// One LSTM cell step from the pre-activations z (bs, 4h) in PyTorch's gate order i, f, g, o and the
// state c (bs, h): c' = f c + i g, h' = o tanh(c'). The backward pass recomputes the gates from z.

/// Gates of one row: s[0:h] = i, s[h:2h] = f, s[2h:3h] = g, s[3h:4h] = o (sigmoid = (1 + tanh(x/2))/2).
/// One tanh pass over the whole row (sigmoid gates at half their argument), then the sigmoid blocks mapped
/// to (1 + t) / 2; block by block, so each loop is a plain vectorisable sweep.
template <typename T>
void lstm_gates(const T* z, T* s, size_t h) {
  half_loop(z, s, 2 * h);
  std::memcpy(s + 2 * h, z + 2 * h, h * sizeof(T));
  half_loop(z + 3 * h, s + 3 * h, h);
  tanh_run(s, s, 4 * h);
  sigmoid_finish(s, 2 * h);
  sigmoid_finish(s + 3 * h, h);
}

inline void check_lstm(const char* op, const AlignedArray& z, const AlignedArray& c, size_t bs, size_t h) {
  size_at_least(op, "z", z, checked_mul(op, bs, checked_mul(op, 4, h)));
  size_at_least(op, "c", c, bs * h);
}

inline void LstmCell(const AlignedArray& z, const AlignedArray& c, AlignedArray* h_out, AlignedArray* c_out, size_t bs,
                     size_t h) {
  const char* op = "lstm_cell";
  same_dtypes(op, {&z, &c, h_out, c_out});
  check_lstm(op, z, c, bs, h);
  size_at_least(op, "h_out", *h_out, bs * h);
  size_at_least(op, "c_out", *c_out, bs * h);
  distinct(op, h_out, {&z, &c});
  distinct(op, c_out, {&z, &c, h_out});
  if (h == 0) return;  // nothing to compute (and a huge `bs` must not be looped over)
  dispatch(z.dtype, [&](auto t) {
    using T = decltype(t);
    parallel_for(bs, h * 32, [&](size_t r0, size_t r1) {
      std::vector<T> s(4 * h), tc(h);
      for (size_t r = r0; r < r1; ++r) {
        lstm_gates(z.data<T>() + r * 4 * h, s.data(), h);
        const T* cr = c.data<T>() + r * h;
        T* cn = c_out->data<T>() + r * h;
        T* hn = h_out->data<T>() + r * h;
        for (size_t j = 0; j < h; ++j) cn[j] = s[h + j] * cr[j] + s[j] * s[2 * h + j];
        tanh_run(cn, tc.data(), h);
        for (size_t j = 0; j < h; ++j) hn[j] = s[3 * h + j] * tc[j];
      }
    });
  });
}

/// dz (bs, 4h) and dc (bs, h) from the adjoints dh of h' and dc_new of c'.
inline void LstmCellGrad(const AlignedArray& z, const AlignedArray& c, const AlignedArray& dh,
                         const AlignedArray& dc_new, AlignedArray* dz, AlignedArray* dc, size_t bs, size_t h) {
  const char* op = "lstm_cell_grad";
  same_dtypes(op, {&z, &c, &dh, &dc_new, dz, dc});
  check_lstm(op, z, c, bs, h);
  size_at_least(op, "dh", dh, bs * h);
  size_at_least(op, "dc_new", dc_new, bs * h);
  size_at_least(op, "dz", *dz, bs * 4 * h);
  size_at_least(op, "dc", *dc, bs * h);
  distinct(op, dz, {&z, &c, &dh, &dc_new});
  distinct(op, dc, {&z, &c, &dh, &dc_new, dz});
  if (h == 0) return;  // nothing to compute (and a huge `bs` must not be looped over)
  dispatch(z.dtype, [&](auto t) {
    using T = decltype(t);
    parallel_for(bs, h * 48, [&](size_t r0, size_t r1) {
      std::vector<T> s(4 * h), cn(h), tc(h);
      for (size_t r = r0; r < r1; ++r) {
        lstm_gates(z.data<T>() + r * 4 * h, s.data(), h);
        const T *cr = c.data<T>() + r * h, *gh = dh.data<T>() + r * h, *gc = dc_new.data<T>() + r * h;
        T* gz = dz->data<T>() + r * 4 * h;
        T* gcr = dc->data<T>() + r * h;
        const T *i = s.data(), *f = i + h, *g = f + h, *o = g + h;
        for (size_t j = 0; j < h; ++j) cn[j] = f[j] * cr[j] + i[j] * g[j];
        tanh_run(cn.data(), tc.data(), h);
        for (size_t j = 0; j < h; ++j) {
          const T d = gc[j] + gh[j] * o[j] * (T(1) - tc[j] * tc[j]);  // total adjoint of c'
          gz[j] = d * g[j] * i[j] * (T(1) - i[j]);
          gz[h + j] = d * cr[j] * f[j] * (T(1) - f[j]);
          gz[2 * h + j] = d * i[j] * (T(1) - g[j] * g[j]);
          gz[3 * h + j] = gh[j] * tc[j] * o[j] * (T(1) - o[j]);
          gcr[j] = d * f[j];
        }
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// im2col: the windows of a convolution's input, read through its strides (an NCHW tensor seen as NHWC needs
// no copy first) with the zero padding written in place, instead of a padded copy then a strided view.

inline void Im2col(const AlignedArray& a, AlignedArray* out, size_t n, size_t h, size_t w, size_t c, size_t kh,
                   size_t kw, size_t stride, size_t pad_h, size_t pad_w, size_t out_h, size_t out_w, int64_t offset,
                   Shape strides) {
  const char* op = "im2col";
  same_dtypes(op, {&a, out});
  NEEDLE_REQUIRE(stride >= 1, "im2col: stride must be >= 1");
  constexpr size_t LIMIT = size_t(1) << 40;  // keeps window coordinates far from int64 overflow
  NEEDLE_REQUIRE(stride < LIMIT && pad_h < LIMIT && pad_w < LIMIT, "im2col: stride or padding too large");
  NEEDLE_REQUIRE(strides.size() == 4, "im2col: strides must have 4 entries (n, h, w, c)");
  const Shape shape{int64_t(n), int64_t(h), int64_t(w), int64_t(c)};
  NEEDLE_REQUIRE(shape[0] >= 0 && shape[1] >= 0 && shape[2] >= 0 && shape[3] >= 0, "im2col: sizes too large");
  check_view(op, a, shape, strides, offset);
  const size_t win = checked_mul(op, checked_mul(op, kh, kw), c);
  const size_t rows = checked_mul(op, checked_mul(op, n, out_h), out_w);
  size_at_least(op, "out", *out, checked_mul(op, rows, win));
  distinct(op, out, {&a});
  if (rows * win == 0) return;
  NEEDLE_REQUIRE(out_h < LIMIT && out_w < LIMIT && kh < LIMIT && kw < LIMIT, "im2col: sizes too large");
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    const T* src = a.data<T>() + offset;
    T* dst = out->data<T>();
    parallel_for(n * out_h, out_w * win, [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r) {
        const int64_t b = int64_t(r / out_h), oy = int64_t(r % out_h);
        for (size_t ox = 0; ox < out_w; ++ox)
          for (size_t i = 0; i < kh; ++i) {
            const int64_t y = oy * int64_t(stride) + int64_t(i) - int64_t(pad_h);
            T* d = dst + ((r * out_w + ox) * kh + i) * kw * c;
            for (size_t j = 0; j < kw; ++j, d += c) {
              const int64_t x = int64_t(ox * stride + j) - int64_t(pad_w);
              if (y < 0 || y >= int64_t(h) || x < 0 || x >= int64_t(w)) {
                std::fill(d, d + c, T(0));
                continue;
              }
              const T* s = src + b * strides[0] + y * strides[1] + x * strides[2];
              if (strides[3] == 1)
                std::memcpy(d, s, c * sizeof(T));
              else
                for (size_t k = 0; k < c; ++k) d[k] = s[int64_t(k) * strides[3]];
            }
          }
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// col2im, the adjoint of im2col (a convolution's input gradient): out (n, h, w, c) gathers, for each of its
// pixels, the taps of the windows of col (n, out_h, out_w, kh, kw, c) that cover it. A gather, not a
// scatter: each thread owns rows of out, and every pixel sums its taps in one fixed order.

inline void Col2im(const AlignedArray& col, AlignedArray* out, size_t n, size_t h, size_t w, size_t c, size_t kh,
                   size_t kw, size_t stride, size_t pad_h, size_t pad_w, size_t out_h, size_t out_w) {
  const char* op = "col2im";
  same_dtypes(op, {&col, out});
  NEEDLE_REQUIRE(stride >= 1, "col2im: stride must be >= 1");
  const size_t win = checked_mul(op, checked_mul(op, kh, kw), c);  // elements of one window
  size_at_least(op, "col", col, checked_mul(op, checked_mul(op, checked_mul(op, n, out_h), out_w), win));
  size_at_least(op, "out", *out, checked_mul(op, checked_mul(op, checked_mul(op, n, h), w), c));
  distinct(op, out, {&col});
  dispatch(col.dtype, [&](auto t) {
    using T = decltype(t);
    const T* src = col.data<T>();
    T* dst = out->data<T>();
    const size_t taps = std::max<size_t>(1, (kh / stride) * (kw / stride));  // per pixel, about (no overflow)
    parallel_for(n * h, w * c * taps, [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r) {
        const size_t b = r / h, y = r % h;
        T* row = dst + r * w * c;
        std::fill(row, row + w * c, T(0));
        // the taps i that reach row y: y + pad_h - i a multiple of stride, window row oy in [0, out_h)
        for (size_t i = (y + pad_h) % stride; i < kh && i <= y + pad_h; i += stride) {
          const size_t oy = (y + pad_h - i) / stride;
          if (oy >= out_h) continue;
          const T* windows = src + (b * out_h + oy) * out_w * win + i * kw * c;
          for (size_t x = 0; x < w; ++x) {
            T* o = row + x * c;
            for (size_t j = (x + pad_w) % stride; j < kw && j <= x + pad_w; j += stride) {
              const size_t ox = (x + pad_w - j) / stride;
              if (ox >= out_w) continue;
              const T* tap = windows + ox * win + j * c;
              for (size_t k = 0; k < c; ++k) o[k] += tap[k];
            }
          }
        }
      }
    });
  });
}

}  // namespace fused
}  // namespace cpu
}  // namespace needle
