// The CPU kernels without Python: compact, elementwise (exp/log/tanh included), reductions and the packed
// matmul against naive loops, in float32 and float64, at sizes that reach the threaded and edge paths.
// CI builds it natively and cross-compiled for aarch64 (run under qemu-user): see tests/native/run.sh.
// The check_* functions are kept out of line, with the kernels inlined into them (flatten), so that
// run.sh can disassemble them and require vector instructions there.
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "elementwise.h"
#include "fused.h"  // not tested here: compiled so that an ARM64 build of it cannot break unnoticed
#include "matmul.h"
#include "optim.h"
#include "reduce.h"
#include "strided.h"

using namespace needle::cpu;

static int failures = 0, checks = 0;

static void expect(bool ok, const std::string& what) {
  ++checks;
  if (!ok) {
    ++failures;
    std::printf("FAIL: %s\n", what.c_str());
  }
}

template <typename T>
static DType dtype_of() {
  return sizeof(T) == 4 ? DType::f32 : DType::f64;
}

template <typename T>
static void fill_random(const AlignedArray& a, unsigned seed, double lo = -2, double hi = 2) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  for (size_t i = 0; i < a.size; ++i) a.data<T>()[i] = T(dist(gen));
}

static bool close(double got, double want, double tol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::abs(got - want) <= tol * std::max(1.0, std::abs(want));
}

// ---- the kernels' vector loops, each in a function of its own (run.sh disassembles these) ----
extern "C" __attribute__((noinline, flatten)) void check_add_f32(const float* x, const float* y, float* z, size_t n) {
  binary_loop(x, y, z, n, Add{});
}
extern "C" __attribute__((noinline, flatten)) float check_sum_f32(const float* x, size_t n) {
  return reduce_block(x, n, Add{});
}
extern "C" __attribute__((noinline, flatten)) float check_max_f32(const float* x, size_t n) {
  return reduce_block(x, n, Max{});
}
extern "C" __attribute__((noinline, flatten)) void check_exp_f32(const float* x, float* z, size_t n) {
  vmath::exp_f32(x, z, n);
}
extern "C" __attribute__((noinline, flatten)) void check_micro_f32(size_t kc, const float* pa, const float* pb, float* c,
                                                          size_t ldc) {
  gemm::Generic<float>::micro(kc, pa, pb, c, ldc, false, gemm::Generic<float>::MR, gemm::Generic<float>::NR);
}

template <typename T>
static void test_compact() {
  const char* name = sizeof(T) == 4 ? "f32" : "f64";
  // a (5, 6, 7, 8) array viewed as permute(3, 1, 0, 2), then as a reversed, stepped and broadcast slice
  const Shape base{5, 6, 7, 8};
  AlignedArray a(5 * 6 * 7 * 8, dtype_of<T>());
  fill_random<T>(a, 1);
  const Shape bstr{6 * 7 * 8, 7 * 8, 8, 1};
  struct Case {
    Shape shape, strides;
    int64_t offset;
  };
  const std::vector<Case> cases = {
      {{8, 6, 5, 7}, {bstr[3], bstr[1], bstr[0], bstr[2]}, 0},
      {{5, 3, 7, 4}, {bstr[0], -2 * bstr[1], bstr[2], 2}, 5 * bstr[1]},  // negative and stepped strides
      {{4, 9, 8}, {0, 0, 1}, 100},                                            // broadcast (stride 0)
      {{5, 6, 7, 8}, bstr, 0},                                                // compact already
  };
  for (const Case& c : cases) {
    size_t n = prod(c.shape);
    AlignedArray out(n, dtype_of<T>());
    Compact(a, &out, c.shape, c.strides, c.offset);
    std::vector<int64_t> idx(c.shape.size(), 0);
    bool ok = true;
    for (size_t flat = 0; flat < n; ++flat) {
      int64_t pos = c.offset;
      for (size_t d = 0; d < idx.size(); ++d) pos += idx[d] * c.strides[d];
      ok = ok && out.data<T>()[flat] == a.data<T>()[pos];
      for (size_t d = idx.size(); d-- > 0;) {
        if (++idx[d] < c.shape[d]) break;
        idx[d] = 0;
      }
    }
    expect(ok, std::string("compact ") + name + " of " + std::to_string(n) + " elements");
  }
  // a large permuted copy: the threaded path
  AlignedArray big(64 * 64 * 300, dtype_of<T>());
  fill_random<T>(big, 2);
  AlignedArray out(big.size, dtype_of<T>());
  Compact(big, &out, {300, 64, 64}, {1, 64 * 300, 300}, 0);
  bool ok = true;
  for (size_t i = 0; i < 300 && ok; ++i)
    for (size_t j = 0; j < 64; ++j)
      for (size_t k = 0; k < 64; ++k) ok = ok && out.data<T>()[(i * 64 + j) * 64 + k] == big.data<T>()[(j * 64 + k) * 300 + i];
  expect(ok, std::string("compact ") + name + " large permute");
}

template <typename T>
static void test_elementwise() {
  const char* name = sizeof(T) == 4 ? "f32" : "f64";
  for (size_t n : {size_t(1), size_t(17), size_t(1003), size_t(1) << 20}) {
    AlignedArray x(n, dtype_of<T>()), y(n, dtype_of<T>()), z(n, dtype_of<T>());
    fill_random<T>(x, 3);
    fill_random<T>(y, 4, 0.5, 3);
    const T* px = x.data<T>();
    const T* py = y.data<T>();
    const T* pz = z.data<T>();
    auto all = [&](auto want, double tol) {
      bool ok = true;
      for (size_t i = 0; i < n; ++i) ok = ok && close(pz[i], want(px[i], py[i]), tol);
      return ok;
    };
    const std::string at = std::string(name) + " n=" + std::to_string(n);
    ewise_binary("add", x, y, &z, Add{});
    expect(all([](double a, double b) { return T(a + b); }, 0), "ewise_add " + at);
    ewise_binary("mul", x, y, &z, Mul{});
    expect(all([](double a, double b) { return T(T(a) * T(b)); }, 0), "ewise_mul " + at);
    ewise_binary("div", x, y, &z, Div{});
    expect(all([](double a, double b) { return T(T(a) / T(b)); }, 0), "ewise_div " + at);
    ewise_binary("maximum", x, y, &z, Max{});
    expect(all([](double a, double b) { return std::max(a, b); }, 0), "ewise_maximum " + at);
    scalar_binary("scalar_add", x, 1.5, &z, Add{});
    expect(all([](double a, double) { return T(a + 1.5); }, 0), "scalar_add " + at);
    scalar_binary("scalar_power", y, 2.0, &z, Pow{});
    expect(all([](double, double b) { return T(T(b) * T(b)); }, 0), "scalar_power " + at);
    const double tol = sizeof(T) == 4 ? 3e-6 : 1e-14;
    auto unary = [&](const char* op, auto f32, auto f64, auto ref, const AlignedArray& in) {
      ewise_unary(op, in, &z, f32, f64);
      bool ok = true;
      for (size_t i = 0; i < n; ++i) ok = ok && close(pz[i], T(ref(double(in.data<T>()[i]))), tol);
      expect(ok, std::string(op) + " " + at);
    };
    unary("exp", vmath::exp_f32, [](double v) { return std::exp(v); }, [](double v) { return std::exp(v); }, x);
    unary("log", vmath::log_f32, [](double v) { return std::log(v); }, [](double v) { return std::log(v); }, y);
    unary("tanh", vmath::tanh_f32, [](double v) { return std::tanh(v); }, [](double v) { return std::tanh(v); }, x);
  }
  // special values through the float32 vector code
  const float inf = INFINITY, nan = NAN;
  const std::vector<float> special = {-inf, inf, nan, 0.0f, -0.0f, 1e-40f, -1.0f, 100.0f, -100.0f, 88.0f, -103.0f};
  AlignedArray s(special.size(), DType::f32), z(special.size(), DType::f32);
  std::copy(special.begin(), special.end(), s.data<float>());
  bool ok = true;
  vmath::exp_f32(s.data<float>(), z.data<float>(), special.size());
  for (size_t i = 0; i < special.size(); ++i) ok = ok && close(z.data<float>()[i], float(std::exp(double(special[i]))), 3e-6);
  vmath::log_f32(s.data<float>(), z.data<float>(), special.size());
  for (size_t i = 0; i < special.size(); ++i) ok = ok && close(z.data<float>()[i], float(std::log(double(special[i]))), 3e-6);
  vmath::tanh_f32(s.data<float>(), z.data<float>(), special.size());
  for (size_t i = 0; i < special.size(); ++i) ok = ok && close(z.data<float>()[i], float(std::tanh(double(special[i]))), 3e-6);
  expect(ok, "exp/log/tanh f32 special values");
}

template <typename T>
static void test_reduction() {
  const char* name = sizeof(T) == 4 ? "f32" : "f64";
  struct Case {
    size_t outer, reduce, inner;
  };
  for (Case c : {Case{1, 1, 1}, Case{3, 70, 1}, Case{1, 1 << 20, 1}, Case{5, 33, 7}, Case{2, 300, 1500}, Case{700, 3, 1}}) {
    AlignedArray a(c.outer * c.reduce * c.inner, dtype_of<T>()), s(c.outer * c.inner, dtype_of<T>()),
        m(c.outer * c.inner, dtype_of<T>());
    fill_random<T>(a, 5);
    ReduceSumAxis(a, &s, c.outer, c.reduce, c.inner);
    ReduceMaxAxis(a, &m, c.outer, c.reduce, c.inner);
    bool ok_sum = true, ok_max = true;
    for (size_t o = 0; o < c.outer; ++o)
      for (size_t i = 0; i < c.inner; ++i) {
        double sum = 0, mx = -INFINITY;
        for (size_t r = 0; r < c.reduce; ++r) {
          const double v = a.data<T>()[(o * c.reduce + r) * c.inner + i];
          sum += v;
          mx = std::max(mx, v);
        }
        ok_sum = ok_sum && close(s.data<T>()[o * c.inner + i], sum, (sizeof(T) == 4 ? 1e-6 : 1e-13) * std::sqrt(double(c.reduce)) * 4);
        ok_max = ok_max && m.data<T>()[o * c.inner + i] == T(mx);
      }
    const std::string at = std::string(name) + " (" + std::to_string(c.outer) + ", " + std::to_string(c.reduce) +
                           ", " + std::to_string(c.inner) + ")";
    expect(ok_sum, "reduce_sum " + at);
    expect(ok_max, "reduce_max " + at);
  }
  AlignedArray x(100, dtype_of<T>()), out(1, dtype_of<T>());
  fill_random<T>(x, 6);
  x.data<T>()[37] = T(NAN);
  ReduceMaxAxis(x, &out, 1, 100, 1);
  expect(std::isnan(double(out.data<T>()[0])), std::string("reduce_max ") + name + " propagates nan");
}

template <typename T>
static void test_matmul() {
  const char* name = sizeof(T) == 4 ? "f32" : "f64";
  struct Case {
    size_t batch, m, n, p;
    bool trans_b;
  };
  for (Case c : {Case{1, 1, 1, 1, false}, Case{1, 7, 33, 257, false}, Case{1, 13, 400, 9, true}, Case{1, 65, 2, 31, false},
                 Case{3, 29, 45, 6, true}, Case{1, 128, 128, 128, false}, Case{1, 200, 301, 150, true},
                 Case{4, 40, 50, 60, false}, Case{1, 3, 20, 10, false}, Case{2, 1, 9, 3, false}, Case{1, 2, 5, 70, false}}) {
    AlignedArray a(c.batch * c.m * c.n, dtype_of<T>()), b(c.batch * c.n * c.p, dtype_of<T>()),
        out(c.batch * c.m * c.p, dtype_of<T>());
    fill_random<T>(a, 7);
    fill_random<T>(b, 8);
    // B stored as (batch, p, n) when trans_b: the kernel reads it through strides
    const Shape b_str = c.trans_b ? Shape{int64_t(c.n * c.p), 1, int64_t(c.n)} : Shape{int64_t(c.n * c.p), int64_t(c.p), 1};
    MatmulStrided(a, b, &out, c.batch, c.m, c.n, c.p, 0, {int64_t(c.m * c.n), int64_t(c.n), 1}, 0, b_str);
    bool ok = true;
    for (size_t q = 0; q < c.batch; ++q)
      for (size_t i = 0; i < c.m; ++i)
        for (size_t j = 0; j < c.p; ++j) {
          double want = 0;
          for (size_t k = 0; k < c.n; ++k)
            want += double(a.data<T>()[(q * c.m + i) * c.n + k]) *
                    double(b.data<T>()[q * c.n * c.p + k * b_str[1] + j * b_str[2]]);
          ok = ok && close(out.data<T>()[(q * c.m + i) * c.p + j], want, (sizeof(T) == 4 ? 2e-6 : 1e-13) * c.n);
        }
    expect(ok, std::string("matmul ") + name + " " + std::to_string(c.batch) + "x" + std::to_string(c.m) + "x" +
                   std::to_string(c.n) + "x" + std::to_string(c.p) + (c.trans_b ? " (B transposed)" : ""));
  }
}

int main() {
  std::printf("needle CPU kernels: %s, GEMM kernels %s (%d x %d tile, float32)\n", build_info().c_str(),
              gemm::isa_name(gemm::current_isa()), gemm::Generic<float>::MR, gemm::Generic<float>::NR);
  test_compact<float>();
  test_compact<double>();
  test_elementwise<float>();
  test_elementwise<double>();
  test_reduction<float>();
  test_reduction<double>();
  test_matmul<float>();
  test_matmul<double>();
  // the out-of-line vector loops, once each (so they are also checked, not only disassembled)
  std::vector<float> x(100), y(100), z(100);
  for (int i = 0; i < 100; ++i) x[i] = float(i % 13) - 6, y[i] = float(i % 7);
  check_add_f32(x.data(), y.data(), z.data(), 100);
  bool ok = true;
  float sum = 0, mx = -INFINITY;
  for (int i = 0; i < 100; ++i) ok = ok && z[i] == x[i] + y[i], sum += x[i], mx = std::max(mx, x[i]);
  expect(ok && check_sum_f32(x.data(), 100) == sum && check_max_f32(x.data(), 100) == mx, "out-of-line loops");
  check_exp_f32(x.data(), z.data(), 100);
  constexpr int MR = gemm::Generic<float>::MR, NR = gemm::Generic<float>::NR;
  std::vector<float> pa(3 * MR, 1.0f), pb(3 * NR, 2.0f), c(MR * NR);
  check_micro_f32(3, pa.data(), pb.data(), c.data(), NR);
  expect(c[0] == 6.0f && c[MR * NR - 1] == 6.0f, "generic micro-kernel");
  std::printf("%d checks, %d failed\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
