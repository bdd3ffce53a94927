// needle's CPU device: flat-buffer kernels with the course's names. All shape and stride logic lives in
// Python (NDArray); these functions see raw buffers, sizes and strides, check them, and raise
// ValueError on bad arguments. The kernels live in the headers next to this file:
//   common.h (buffer, checks, threading), strided.h (compact/setitem/fill), elementwise.h + vmath.h,
//   reduce.h, matmul.h (the packed GEMM behind every matmul), optim.h (the fused Adam update),
//   fused.h (the fused ops' kernels: embedding, softmax cross-entropy, sigmoid, normalization, LSTM cell).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "common.h"
#include "elementwise.h"
#include "fused.h"
#include "matmul.h"
#include "optim.h"
#include "reduce.h"
#include "strided.h"

namespace needle {
namespace cpu {

constexpr size_t TILE = 8;

/// The course's tiled layout: a is [m/T][n/T][T][T], b is [n/T][p/T][T][T], out is [m/T][p/T][T][T].
void MatmulTiled(const AlignedArray& a, const AlignedArray& b, AlignedArray* out, size_t m, size_t n, size_t p) {
  same_dtype("matmul_tiled", a, b);
  same_dtype("matmul_tiled", a, *out);
  NEEDLE_REQUIRE(m % TILE == 0 && n % TILE == 0 && p % TILE == 0, "matmul_tiled: m, n, p must be multiples of 8");
  size_t mn, np_, mp;
  NEEDLE_REQUIRE(!__builtin_mul_overflow(m, n, &mn) && !__builtin_mul_overflow(n, p, &np_) && !__builtin_mul_overflow(m, p, &mp),
                 "matmul_tiled: sizes overflow");
  size_at_least("matmul_tiled", "a", a, m * n);
  size_at_least("matmul_tiled", "b", b, n * p);
  size_at_least("matmul_tiled", "out", *out, m * p);
  NEEDLE_REQUIRE(out != &a && out != &b, "matmul_tiled: out must not be one of the inputs");
  dispatch(a.dtype, [&](auto t) {
    using T = decltype(t);
    const T* A = a.data<T>();
    const T* B = b.data<T>();
    T* C = out->data<T>();
    const size_t mt = m / TILE, nt = n / TILE, pt = p / TILE;
    parallel_for(mt, n * p, [&](size_t i0, size_t i1) {
      for (size_t i = i0; i < i1; ++i)
        for (size_t j = 0; j < pt; ++j) {
          T c[TILE * TILE] = {};
          for (size_t k = 0; k < nt; ++k) {
            const T* at = A + (i * nt + k) * TILE * TILE;
            const T* bt = B + (k * pt + j) * TILE * TILE;
            for (size_t r = 0; r < TILE; ++r)
              for (size_t s = 0; s < TILE; ++s)
                for (size_t c2 = 0; c2 < TILE; ++c2) c[r * TILE + c2] += at[r * TILE + s] * bt[s * TILE + c2];
          }
          std::copy(c, c + TILE * TILE, C + (i * pt + j) * TILE * TILE);
        }
    });
  });
}

}  // namespace cpu
}  // namespace needle

PYBIND11_MODULE(ndarray_backend_cpu, m) {
  namespace py = pybind11;
  using namespace needle::cpu;

  m.attr("__device_name__") = "cpu";
  m.attr("__tile_size__") = TILE;
  m.attr("__gemm_isa__") = gemm::isa_name(gemm::current_isa());  // avx512, avx2 or generic
  m.attr("__build__") = build_info();  // compiler, architecture, OpenMP or not
  m.attr("__openmp__") = HAVE_OPENMP;

  py::class_<AlignedArray>(m, "Array")
      .def(py::init([](int64_t size, const std::string& dtype) {
             NEEDLE_REQUIRE(size >= 0, "Array: size must be >= 0, got " + std::to_string(size));
             NEEDLE_REQUIRE(size <= (int64_t(1) << 40), "Array: size " + std::to_string(size) + " is too large");
             return new AlignedArray(static_cast<size_t>(size), parse_dtype(dtype));
           }),
           py::arg("size"), py::arg("dtype") = "float32", py::return_value_policy::take_ownership)
      .def("ptr", &AlignedArray::ptr_as_int)
      .def_readonly("size", &AlignedArray::size)
      .def_property_readonly("dtype", [](const AlignedArray& a) {
        // read by every NDArray op: two Python strings made once (never freed: they outlive the interpreter)
        static const py::str* names[] = {new py::str("float32"), new py::str("float64")};
        return *names[a.dtype == DType::f32 ? 0 : 1];
      });

  // the bytes of live Arrays (needle/backend_ndarray/memory.py): (current, peak, live buffers)
  m.def("memory_stats", [] {
    return py::make_tuple(memory_counters.current, memory_counters.peak, memory_counters.live);
  });
  m.def("reset_peak_memory_stats", [] { memory_counters.peak = memory_counters.current; });

  m.def("to_numpy", [](const AlignedArray& a, Shape shape, Shape strides, int64_t offset) -> py::array {
    check_view("to_numpy", a, shape, strides, offset);
    py::array out;
    dispatch(a.dtype, [&](auto t) {
      using T = decltype(t);
      py::array_t<T> arr(std::vector<py::ssize_t>(shape.begin(), shape.end()));
      gather(a.data<T>(), static_cast<T*>(arr.mutable_data()), shape, strides, offset);
      out = arr;
    });
    return out;
  });

  m.def("from_numpy", nonnull("from_numpy", [](py::array src, AlignedArray* out) {
    dispatch(out->dtype, [&](auto t) {
      using T = decltype(t);
      auto arr = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(src);
      NEEDLE_REQUIRE(bool(arr), "from_numpy: cannot convert the input to " + std::string(dtype_name(out->dtype)));
      NEEDLE_REQUIRE(static_cast<size_t>(arr.size()) == out->size,
                     "from_numpy: input has " + std::to_string(arr.size()) + " elements, buffer has " +
                         std::to_string(out->size));
      const T* src_ptr = arr.data();
      T* dst = out->data<T>();
      parallel_for(out->size, 1, [&](size_t i0, size_t i1) { std::memcpy(dst + i0, src_ptr + i0, (i1 - i0) * sizeof(T)); });
    });
  }));

  m.def("fill", nonnull("fill", Fill));
  m.def("compact", nonnull("compact", Compact));
  m.def("ewise_setitem", nonnull("ewise_setitem", EwiseSetitem));
  m.def("scalar_setitem", nonnull("scalar_setitem", ScalarSetitem));

  // ewise_X(a, b, out) and scalar_X(a, val, out) for each binary op
  auto binary = [&m](const char* name, auto op) {
    const std::string ewise = std::string("ewise_") + name, scalar = std::string("scalar_") + name;
    m.def(ewise.c_str(), nonnull(ewise, [ewise, op](const AlignedArray& a, const AlignedArray& b, AlignedArray* out) {
      ewise_binary(ewise.c_str(), a, b, out, op);
    }));
    m.def(scalar.c_str(), nonnull(scalar, [scalar, op](const AlignedArray& a, double v, AlignedArray* out) {
      scalar_binary(scalar.c_str(), a, v, out, op);
    }));
  };
  binary("add", Add{});
  binary("mul", Mul{});
  binary("div", Div{});
  binary("maximum", Max{});
  binary("eq", Eq{});
  binary("ge", Ge{});
  binary("power", Pow{});

  m.def("ewise_log", nonnull("ewise_log", [](const AlignedArray& a, AlignedArray* out) {
    ewise_unary("ewise_log", a, out, vmath::log_f32, [](double x) { return std::log(x); });
  }));
  m.def("ewise_exp", nonnull("ewise_exp", [](const AlignedArray& a, AlignedArray* out) {
    ewise_unary("ewise_exp", a, out, vmath::exp_f32, [](double x) { return std::exp(x); });
  }));
  m.def("ewise_tanh", nonnull("ewise_tanh", [](const AlignedArray& a, AlignedArray* out) {
    ewise_unary("ewise_tanh", a, out, vmath::tanh_f32, [](double x) { return std::tanh(x); });
  }));

  m.def("reduce_sum", nonnull("reduce_sum", [](const AlignedArray& a, AlignedArray* out, size_t reduce_size) {
    reduce_blocks("reduce_sum", a, out, reduce_size, ReduceSumAxis);
  }));
  m.def("reduce_max", nonnull("reduce_max", [](const AlignedArray& a, AlignedArray* out, size_t reduce_size) {
    reduce_blocks("reduce_max", a, out, reduce_size, ReduceMaxAxis);
  }));
  m.def("reduce_sum_axis", nonnull("reduce_sum_axis", ReduceSumAxis));
  m.def("reduce_max_axis", nonnull("reduce_max_axis", ReduceMaxAxis));

  m.def("matmul", nonnull("matmul", Matmul));
  m.def("matmul_tiled", nonnull("matmul_tiled", MatmulTiled));
  m.def("matmul_strided", nonnull("matmul_strided", MatmulStrided));

  // Beyond the course's contract: a fused Adam update (needle.optim.Adam uses it when the device has it).
  m.def("adam_step", nonnull("adam_step", [](const AlignedArray& p, const AlignedArray& g, const AlignedArray& m, const AlignedArray& v,
                        AlignedArray* out_p, AlignedArray* out_m, AlignedArray* out_v, double lr, double beta1,
                        double beta2, double eps, double weight_decay, double bias1, double bias2, bool first) {
    AdamStep(p, g, m, v, out_p, out_m, out_v, {lr, beta1, beta2, eps, weight_decay, bias1, bias2, first});
  }));

  // The fused ops' kernels (contract and argument order: needle/backend_ndarray/fused.py).
  m.def("embedding_gather", nonnull("embedding_gather", fused::EmbeddingGather));
  m.def("embedding_scatter_add", nonnull("embedding_scatter_add", fused::EmbeddingScatterAdd));
  m.def("softmax_xent", nonnull("softmax_xent", fused::SoftmaxXent));
  m.def("softmax_xent_grad", nonnull("softmax_xent_grad", fused::SoftmaxXentGrad));
  m.def("sigmoid", nonnull("sigmoid", fused::Sigmoid));
  m.def("sigmoid_grad", nonnull("sigmoid_grad", fused::SigmoidGrad));
  m.def("batchnorm_stats", nonnull("batchnorm_stats", fused::BatchnormStats));
  m.def("batchnorm_forward", nonnull("batchnorm_forward", fused::BatchnormForward));
  m.def("batchnorm_backward", nonnull("batchnorm_backward", fused::BatchnormBackward));
  m.def("layernorm_forward", nonnull("layernorm_forward", fused::LayernormForward));
  m.def("layernorm_backward", nonnull("layernorm_backward", fused::LayernormBackward));
  m.def("lstm_cell", nonnull("lstm_cell", fused::LstmCell));
  m.def("lstm_cell_grad", nonnull("lstm_cell_grad", fused::LstmCellGrad));
  m.def("im2col", nonnull("im2col", fused::Im2col));
  m.def("col2im", nonnull("col2im", fused::Col2im));
}
