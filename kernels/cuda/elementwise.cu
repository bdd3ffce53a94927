// Elementwise kernels: out[i] = op(a[i], b[i]) or op(a[i], val), and the unary math functions.
#include "common.cuh"

namespace {  // per build: the float32 and float64 functors must not meet at link time
struct Add { __device__ scalar_t operator()(scalar_t x, scalar_t y) const { return x + y; } };
struct Mul { __device__ scalar_t operator()(scalar_t x, scalar_t y) const { return x * y; } };
struct Div { __device__ scalar_t operator()(scalar_t x, scalar_t y) const { return x / y; } };
struct Max { __device__ scalar_t operator()(scalar_t x, scalar_t y) const { return nd_max(x, y); } };
struct Eq { __device__ scalar_t operator()(scalar_t x, scalar_t y) const { return x == y ? scalar_t(1) : scalar_t(0); } };
struct Ge { __device__ scalar_t operator()(scalar_t x, scalar_t y) const { return x >= y ? scalar_t(1) : scalar_t(0); } };
struct Pow { __device__ scalar_t operator()(scalar_t x, scalar_t y) const { return y == scalar_t(2) ? x * x : nd_pow(x, y); } };
}  // namespace

template <typename Op>
static __device__ __forceinline__ void ewise(const scalar_t* a, const scalar_t* b, scalar_t* out, idx_t n, Op op) {
  FOR_EACH_INDEX(i, n) out[i] = op(a[i], b[i]);
}

template <typename Op>
static __device__ __forceinline__ void scalar(const scalar_t* a, scalar_t val, scalar_t* out, idx_t n, Op op) {
  FOR_EACH_INDEX(i, n) out[i] = op(a[i], val);
}

extern "C" __global__ void KERNEL(ewise_add)(const scalar_t* a, const scalar_t* b, scalar_t* out, idx_t n) { ewise(a, b, out, n, Add()); }
extern "C" __global__ void KERNEL(scalar_add)(const scalar_t* a, scalar_t val, scalar_t* out, idx_t n) { scalar(a, val, out, n, Add()); }
extern "C" __global__ void KERNEL(ewise_mul)(const scalar_t* a, const scalar_t* b, scalar_t* out, idx_t n) { ewise(a, b, out, n, Mul()); }
extern "C" __global__ void KERNEL(scalar_mul)(const scalar_t* a, scalar_t val, scalar_t* out, idx_t n) { scalar(a, val, out, n, Mul()); }
extern "C" __global__ void KERNEL(ewise_div)(const scalar_t* a, const scalar_t* b, scalar_t* out, idx_t n) { ewise(a, b, out, n, Div()); }
extern "C" __global__ void KERNEL(scalar_div)(const scalar_t* a, scalar_t val, scalar_t* out, idx_t n) { scalar(a, val, out, n, Div()); }
extern "C" __global__ void KERNEL(ewise_maximum)(const scalar_t* a, const scalar_t* b, scalar_t* out, idx_t n) { ewise(a, b, out, n, Max()); }
extern "C" __global__ void KERNEL(scalar_maximum)(const scalar_t* a, scalar_t val, scalar_t* out, idx_t n) { scalar(a, val, out, n, Max()); }
extern "C" __global__ void KERNEL(ewise_eq)(const scalar_t* a, const scalar_t* b, scalar_t* out, idx_t n) { ewise(a, b, out, n, Eq()); }
extern "C" __global__ void KERNEL(scalar_eq)(const scalar_t* a, scalar_t val, scalar_t* out, idx_t n) { scalar(a, val, out, n, Eq()); }
extern "C" __global__ void KERNEL(ewise_ge)(const scalar_t* a, const scalar_t* b, scalar_t* out, idx_t n) { ewise(a, b, out, n, Ge()); }
extern "C" __global__ void KERNEL(scalar_ge)(const scalar_t* a, scalar_t val, scalar_t* out, idx_t n) { scalar(a, val, out, n, Ge()); }
extern "C" __global__ void KERNEL(ewise_power)(const scalar_t* a, const scalar_t* b, scalar_t* out, idx_t n) { ewise(a, b, out, n, Pow()); }
extern "C" __global__ void KERNEL(scalar_power)(const scalar_t* a, scalar_t val, scalar_t* out, idx_t n) { scalar(a, val, out, n, Pow()); }

extern "C" __global__ void KERNEL(ewise_log)(const scalar_t* a, scalar_t* out, idx_t n) { FOR_EACH_INDEX(i, n) out[i] = nd_log(a[i]); }
extern "C" __global__ void KERNEL(ewise_exp)(const scalar_t* a, scalar_t* out, idx_t n) { FOR_EACH_INDEX(i, n) out[i] = nd_exp(a[i]); }
extern "C" __global__ void KERNEL(ewise_tanh)(const scalar_t* a, scalar_t* out, idx_t n) { FOR_EACH_INDEX(i, n) out[i] = nd_tanh(a[i]); }
