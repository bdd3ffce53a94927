// needle's CPU device: flat-buffer kernels with the course's names (see kernels/README.md).
// All shape and stride logic lives in Python; these functions see raw buffers, sizes and strides.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace py = pybind11;

namespace needle {
namespace cpu {

constexpr size_t ALIGNMENT = 256;
constexpr size_t TILE = 8;

enum class DType { f32, f64 };

inline DType parse_dtype(const std::string& s) {
  if (s == "float32") return DType::f32;
  if (s == "float64") return DType::f64;
  throw std::invalid_argument("Array: unsupported dtype '" + s + "' (expected 'float32' or 'float64')");
}

inline size_t itemsize(DType d) { return d == DType::f32 ? 4 : 8; }
inline const char* dtype_name(DType d) { return d == DType::f32 ? "float32" : "float64"; }

/// A flat, 256-byte aligned buffer of float32 or float64 elements.
struct AlignedArray {
  AlignedArray(size_t size, DType dtype) : size(size), dtype(dtype) {
    size_t bytes = std::max<size_t>(size * itemsize(dtype), 1);
    bytes = (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    ptr = std::aligned_alloc(ALIGNMENT, bytes);
    if (ptr == nullptr) throw std::bad_alloc();
  }
  ~AlignedArray() { std::free(ptr); }
  AlignedArray(const AlignedArray&) = delete;
  AlignedArray& operator=(const AlignedArray&) = delete;
  size_t ptr_as_int() const { return reinterpret_cast<size_t>(ptr); }
  template <typename T>
  T* data() const { return static_cast<T*>(ptr); }

  void* ptr;
  size_t size;
  DType dtype;
};

using Shape = std::vector<int64_t>;

// ---- argument checks: a bad call from Python raises, it never crashes ----

inline void require(bool ok, const std::string& msg) {
  if (!ok) throw std::invalid_argument(msg);
}

inline void same_dtype(const char* op, const AlignedArray& a, const AlignedArray& b) {
  require(a.dtype == b.dtype, std::string(op) + ": dtype mismatch (" + dtype_name(a.dtype) + " vs " +
                                  dtype_name(b.dtype) + ")");
}

inline void size_at_least(const char* op, const char* what, const AlignedArray& a, size_t n) {
  require(a.size >= n, std::string(op) + ": " + what + " holds " + std::to_string(a.size) +
                           " elements, needs " + std::to_string(n));
}

/// Checks that every element a strided view (shape, strides, offset) touches lies inside `a`.
inline void check_view(const char* op, const AlignedArray& a, const Shape& shape, const Shape& strides,
                       int64_t offset) {
  require(shape.size() == strides.size(), std::string(op) + ": shape and strides differ in length");
  int64_t lo = offset, hi = offset;
  for (size_t i = 0; i < shape.size(); ++i) {
    require(shape[i] >= 0, std::string(op) + ": negative dimension in shape");
    if (shape[i] == 0) return;  // empty view touches nothing
    int64_t span = (shape[i] - 1) * strides[i];
    (span < 0 ? lo : hi) += span;
  }
  require(lo >= 0 && hi < static_cast<int64_t>(a.size),
          std::string(op) + ": strided view reaches outside its buffer (elements " + std::to_string(lo) +
              ".." + std::to_string(hi) + " of " + std::to_string(a.size) + ")");
}

inline size_t prod(const Shape& shape) {
  size_t n = 1;
  for (auto s : shape) n *= static_cast<size_t>(s);
  return n;
}

/// Calls fn(strided_index, flat_index) for every element of a strided view, in row-major order.
template <typename Fn>
inline void for_each_strided(const Shape& shape, const Shape& strides, int64_t offset, Fn fn) {
  size_t n = prod(shape);
  size_t nd = shape.size();
  if (n == 0) return;
  std::vector<int64_t> idx(nd, 0);
  int64_t pos = offset;
  const int64_t inner = nd ? shape[nd - 1] : 1;
  const int64_t inner_stride = nd ? strides[nd - 1] : 0;
  for (size_t flat = 0; flat < n; flat += inner) {
    int64_t p = pos;
    for (int64_t j = 0; j < inner; ++j, p += inner_stride) fn(p, flat + j);
    // advance the outer index (all but the last dimension)
    for (int64_t d = static_cast<int64_t>(nd) - 2; d >= 0; --d) {
      idx[d]++;
      pos += strides[d];
      if (idx[d] < shape[d]) break;
      pos -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

template <typename Fn>
inline void dispatch(DType d, Fn fn) {
  if (d == DType::f32)
    fn(float{});
  else
    fn(double{});
}

// ---- fill, compact, setitem ----

void Fill(AlignedArray* out, double val) {
  dispatch(out->dtype, [&](auto t) {
    using T = decltype(t);
    std::fill(out->data<T>(), out->data<T>() + out->size, static_cast<T>(val));
  });
}

void Compact(const AlignedArray& a, AlignedArray* out, Shape shape, Shape strides, int64_t offset) {
  same_dtype("compact", a, *out);
  check_view("compact", a, shape, strides, offset);
  size_at_least("compact", "out", *out, prod(shape));
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    const T* src = a.data<T>();
    T* dst = out->data<T>();
    for_each_strided(shape, strides, offset, [&](int64_t p, size_t i) { dst[i] = src[p]; });
  });
}

void EwiseSetitem(const AlignedArray& a, AlignedArray* out, Shape shape, Shape strides, int64_t offset) {
  same_dtype("ewise_setitem", a, *out);
  check_view("ewise_setitem", *out, shape, strides, offset);
  size_at_least("ewise_setitem", "source", a, prod(shape));
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    const T* src = a.data<T>();
    T* dst = out->data<T>();
    for_each_strided(shape, strides, offset, [&](int64_t p, size_t i) { dst[p] = src[i]; });
  });
}

void ScalarSetitem(size_t size, double val, AlignedArray* out, Shape shape, Shape strides, int64_t offset) {
  check_view("scalar_setitem", *out, shape, strides, offset);
  require(size == prod(shape), "scalar_setitem: size does not match the view's shape");
  dispatch(out->dtype, [&](auto t) {
    using T = decltype(t);
    T* dst = out->data<T>();
    const T v = static_cast<T>(val);
    for_each_strided(shape, strides, offset, [&](int64_t p, size_t) { dst[p] = v; });
  });
}

// ---- elementwise ----

template <typename Op>
void ewise_binary(const char* name, const AlignedArray& a, const AlignedArray& b, AlignedArray* out, Op op) {
  same_dtype(name, a, b);
  same_dtype(name, a, *out);
  require(a.size == b.size && a.size == out->size, std::string(name) + ": operand sizes differ");
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    const T* x = a.data<T>();
    const T* y = b.data<T>();
    T* z = out->data<T>();
    for (size_t i = 0; i < a.size; ++i) z[i] = op(x[i], y[i]);
  });
}

template <typename Op>
void scalar_binary(const char* name, const AlignedArray& a, double val, AlignedArray* out, Op op) {
  same_dtype(name, a, *out);
  require(a.size == out->size, std::string(name) + ": operand sizes differ");
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    const T* x = a.data<T>();
    const T v = static_cast<T>(val);
    T* z = out->data<T>();
    for (size_t i = 0; i < a.size; ++i) z[i] = op(x[i], v);
  });
}

template <typename Op>
void ewise_unary(const char* name, const AlignedArray& a, AlignedArray* out, Op op) {
  same_dtype(name, a, *out);
  require(a.size == out->size, std::string(name) + ": operand sizes differ");
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    const T* x = a.data<T>();
    T* z = out->data<T>();
    for (size_t i = 0; i < a.size; ++i) z[i] = op(x[i]);
  });
}

struct Add { template <typename T> T operator()(T x, T y) const { return x + y; } };
struct Mul { template <typename T> T operator()(T x, T y) const { return x * y; } };
struct Div { template <typename T> T operator()(T x, T y) const { return x / y; } };
struct Pow { template <typename T> T operator()(T x, T y) const { return std::pow(x, y); } };
struct Max { template <typename T> T operator()(T x, T y) const { return x > y ? x : y; } };
struct Eq { template <typename T> T operator()(T x, T y) const { return x == y ? T(1) : T(0); } };
struct Ge { template <typename T> T operator()(T x, T y) const { return x >= y ? T(1) : T(0); } };
struct Log { template <typename T> T operator()(T x) const { return std::log(x); } };
struct Exp { template <typename T> T operator()(T x) const { return std::exp(x); } };
struct Tanh { template <typename T> T operator()(T x) const { return std::tanh(x); } };

// ---- reductions ----

template <typename Init, typename Op>
void reduce_axis(const char* name, const AlignedArray& a, AlignedArray* out, size_t outer, size_t reduce,
                 size_t inner, Init init, Op op) {
  same_dtype(name, a, *out);
  require(reduce > 0, std::string(name) + ": cannot reduce over an empty axis");
  size_at_least(name, "input", a, outer * reduce * inner);
  size_at_least(name, "out", *out, outer * inner);
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    const T* x = a.data<T>();
    T* z = out->data<T>();
    for (size_t o = 0; o < outer; ++o) {
      T* zo = z + o * inner;
      const T* xo = x + o * reduce * inner;
      for (size_t i = 0; i < inner; ++i) zo[i] = init(xo[i]);
      for (size_t r = 1; r < reduce; ++r)
        for (size_t i = 0; i < inner; ++i) zo[i] = op(zo[i], xo[r * inner + i]);
    }
  });
}

struct First { template <typename T> T operator()(T x) const { return x; } };

void ReduceSumAxis(const AlignedArray& a, AlignedArray* out, size_t outer, size_t reduce, size_t inner) {
  reduce_axis("reduce_sum", a, out, outer, reduce, inner, First{}, Add{});
}
void ReduceMaxAxis(const AlignedArray& a, AlignedArray* out, size_t outer, size_t reduce, size_t inner) {
  reduce_axis("reduce_max", a, out, outer, reduce, inner, First{}, Max{});
}

// ---- matmul ----

/// out[b] = A[b] @ B[b] for strided A (batch, m, n) and B (batch, n, p); out is compact (batch, m, p).
void MatmulStrided(const AlignedArray& a, const AlignedArray& b, AlignedArray* out, size_t batch, size_t m,
                   size_t n, size_t p, int64_t a_off, Shape a_str, int64_t b_off, Shape b_str) {
  same_dtype("matmul", a, b);
  same_dtype("matmul", a, *out);
  require(a_str.size() == 3 && b_str.size() == 3, "matmul: strides must have 3 entries (batch, row, col)");
  check_view("matmul", a, {int64_t(batch), int64_t(m), int64_t(n)}, a_str, a_off);
  check_view("matmul", b, {int64_t(batch), int64_t(n), int64_t(p)}, b_str, b_off);
  size_at_least("matmul", "out", *out, batch * m * p);
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    const T* A = a.data<T>();
    const T* B = b.data<T>();
    T* C = out->data<T>();
    for (size_t q = 0; q < batch; ++q)
      for (size_t i = 0; i < m; ++i) {
        T* c = C + (q * m + i) * p;
        std::fill(c, c + p, T(0));
        for (size_t k = 0; k < n; ++k) {
          const T aik = A[a_off + q * a_str[0] + i * a_str[1] + k * a_str[2]];
          const T* brow = B + b_off + q * b_str[0] + k * b_str[1];
          for (size_t j = 0; j < p; ++j) c[j] += aik * brow[j * b_str[2]];
        }
      }
  });
}

void Matmul(const AlignedArray& a, const AlignedArray& b, AlignedArray* out, size_t m, size_t n, size_t p) {
  MatmulStrided(a, b, out, 1, m, n, p, 0, {0, int64_t(n), 1}, 0, {0, int64_t(p), 1});
}

/// The course's tiled layout: a is [m/T][n/T][T][T], b is [n/T][p/T][T][T], out is [m/T][p/T][T][T].
void MatmulTiled(const AlignedArray& a, const AlignedArray& b, AlignedArray* out, size_t m, size_t n, size_t p) {
  same_dtype("matmul_tiled", a, b);
  same_dtype("matmul_tiled", a, *out);
  require(m % TILE == 0 && n % TILE == 0 && p % TILE == 0, "matmul_tiled: m, n, p must be multiples of 8");
  size_at_least("matmul_tiled", "a", a, m * n);
  size_at_least("matmul_tiled", "b", b, n * p);
  size_at_least("matmul_tiled", "out", *out, m * p);
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    const T* A = a.data<T>();
    const T* B = b.data<T>();
    T* C = out->data<T>();
    std::fill(C, C + m * p, T(0));
    const size_t mt = m / TILE, nt = n / TILE, pt = p / TILE;
    for (size_t i = 0; i < mt; ++i)
      for (size_t j = 0; j < pt; ++j) {
        T* c = C + (i * pt + j) * TILE * TILE;
        for (size_t k = 0; k < nt; ++k) {
          const T* at = A + (i * nt + k) * TILE * TILE;
          const T* bt = B + (k * pt + j) * TILE * TILE;
          for (size_t r = 0; r < TILE; ++r)
            for (size_t s = 0; s < TILE; ++s)
              for (size_t c2 = 0; c2 < TILE; ++c2) c[r * TILE + c2] += at[r * TILE + s] * bt[s * TILE + c2];
        }
      }
  });
}

}  // namespace cpu
}  // namespace needle

PYBIND11_MODULE(ndarray_backend_cpu, m) {
  namespace py = pybind11;
  using namespace needle;
  using namespace cpu;

  m.attr("__device_name__") = "cpu";
  m.attr("__tile_size__") = TILE;

  py::class_<AlignedArray>(m, "Array")
      .def(py::init([](int64_t size, const std::string& dtype) {
             require(size >= 0, "Array: size must be >= 0, got " + std::to_string(size));
             return new AlignedArray(static_cast<size_t>(size), parse_dtype(dtype));
           }),
           py::arg("size"), py::arg("dtype") = "float32", py::return_value_policy::take_ownership)
      .def("ptr", &AlignedArray::ptr_as_int)
      .def_readonly("size", &AlignedArray::size)
      .def_property_readonly("dtype", [](const AlignedArray& a) { return std::string(dtype_name(a.dtype)); });

  m.def("to_numpy", [](const AlignedArray& a, Shape shape, Shape strides, int64_t offset) -> py::array {
    check_view("to_numpy", a, shape, strides, offset);
    py::array out;
    dispatch(a.dtype, [&](auto t) {
      using T = decltype(t);
      py::array_t<T> arr(std::vector<py::ssize_t>(shape.begin(), shape.end()));
      T* dst = static_cast<T*>(arr.mutable_data());
      const T* src = a.data<T>();
      for_each_strided(shape, strides, offset, [&](int64_t p, size_t i) { dst[i] = src[p]; });
      out = arr;
    });
    return out;
  });

  m.def("from_numpy", [](py::array src, AlignedArray* out) {
    dispatch(out->dtype, [&](auto t) {
      using T = decltype(t);
      auto arr = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(src);
      require(bool(arr), "from_numpy: cannot convert the input to " + std::string(dtype_name(out->dtype)));
      require(static_cast<size_t>(arr.size()) == out->size,
              "from_numpy: input has " + std::to_string(arr.size()) + " elements, buffer has " +
                  std::to_string(out->size));
      std::memcpy(out->ptr, arr.data(), out->size * sizeof(T));
    });
  });

  m.def("fill", Fill);
  m.def("compact", Compact);
  m.def("ewise_setitem", EwiseSetitem);
  m.def("scalar_setitem", ScalarSetitem);

#define NEEDLE_BINARY(NAME, OP)                                                                        \
  m.def("ewise_" #NAME, [](const AlignedArray& a, const AlignedArray& b, AlignedArray* out) {         \
    ewise_binary("ewise_" #NAME, a, b, out, OP{});                                                   \
  });                                                                                                 \
  m.def("scalar_" #NAME,                                                                             \
        [](const AlignedArray& a, double v, AlignedArray* out) { scalar_binary("scalar_" #NAME, a, v, out, OP{}); });
  NEEDLE_BINARY(add, Add)
  NEEDLE_BINARY(mul, Mul)
  NEEDLE_BINARY(div, Div)
  NEEDLE_BINARY(power, Pow)
  NEEDLE_BINARY(maximum, Max)
  NEEDLE_BINARY(eq, Eq)
  NEEDLE_BINARY(ge, Ge)
#undef NEEDLE_BINARY
#define NEEDLE_UNARY(NAME, OP) \
  m.def("ewise_" #NAME, [](const AlignedArray& a, AlignedArray* out) { ewise_unary("ewise_" #NAME, a, out, OP{}); });
  NEEDLE_UNARY(log, Log)
  NEEDLE_UNARY(exp, Exp)
  NEEDLE_UNARY(tanh, Tanh)
#undef NEEDLE_UNARY

  m.def("reduce_sum", [](const AlignedArray& a, AlignedArray* out, size_t reduce_size) {
    require(reduce_size > 0, "reduce_sum: reduce_size must be > 0");
    ReduceSumAxis(a, out, a.size / reduce_size, reduce_size, 1);
  });
  m.def("reduce_max", [](const AlignedArray& a, AlignedArray* out, size_t reduce_size) {
    require(reduce_size > 0, "reduce_max: reduce_size must be > 0");
    ReduceMaxAxis(a, out, a.size / reduce_size, reduce_size, 1);
  });
  m.def("reduce_sum_axis", ReduceSumAxis);
  m.def("reduce_max_axis", ReduceMaxAxis);

  m.def("matmul", Matmul);
  m.def("matmul_tiled", MatmulTiled);
  m.def("matmul_strided", MatmulStrided);
}
