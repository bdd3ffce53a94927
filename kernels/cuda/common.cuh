// Shared definitions of needle's CUDA kernels. NVRTC compiles these files as they are (no host headers),
// and the simulator compiles them as C++ after kernels/cuda_sim/needle_sim.h.
//
// Every kernel is written once over `scalar_t` and built twice: KERNEL(ewise_add) names ewise_add_f32 in the
// float32 build and ewise_add_f64 in the float64 build (NEEDLE_DTYPE_F64). Sizes, strides and offsets are
// `idx_t` (64-bit, signed: strides may be negative). Helpers are `static` so the two builds never clash.
#pragma once

#ifdef NEEDLE_DTYPE_F64
typedef double scalar_t;
#define KERNEL(name) name##_f64
#else
typedef float scalar_t;
#define KERNEL(name) name##_f32
#endif
typedef long long idx_t;

/// Grid-stride loop: thread t of the whole grid handles elements t, t + threads, t + 2 * threads, ...
#define FOR_EACH_INDEX(i, n) \
  for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (idx_t)blockDim.x * gridDim.x)

// one name per math function for both dtypes
static __device__ __forceinline__ float nd_exp(float x) { return expf(x); }
static __device__ __forceinline__ double nd_exp(double x) { return exp(x); }
static __device__ __forceinline__ float nd_log(float x) { return logf(x); }
static __device__ __forceinline__ double nd_log(double x) { return log(x); }
static __device__ __forceinline__ float nd_tanh(float x) { return tanhf(x); }
static __device__ __forceinline__ double nd_tanh(double x) { return tanh(x); }
static __device__ __forceinline__ float nd_pow(float x, float y) { return powf(x, y); }
static __device__ __forceinline__ double nd_pow(double x, double y) { return pow(x, y); }
static __device__ __forceinline__ float nd_sqrt(float x) { return sqrtf(x); }
static __device__ __forceinline__ double nd_sqrt(double x) { return sqrt(x); }

/// +infinity (NVRTC has no host headers, so no INFINITY macro): the IEEE bit pattern.
static __device__ __forceinline__ scalar_t nd_inf() {
#ifdef NEEDLE_DTYPE_F64
  return __longlong_as_double(0x7ff0000000000000LL);
#else
  return __int_as_float(0x7f800000);
#endif
}

/// numpy's maximum: a NaN in either operand gives NaN.
static __device__ __forceinline__ scalar_t nd_max(scalar_t x, scalar_t y) { return (x > y || x != x) ? x : y; }

/// Offset of the i-th element (row-major order) of a strided view; meta holds shape[ndim] then strides[ndim].
static __device__ __forceinline__ idx_t strided_offset(idx_t i, const idx_t* meta, int ndim, idx_t offset) {
  for (int d = ndim - 1; d >= 0; --d) {
    const idx_t n = meta[d];
    offset += (i % n) * meta[ndim + d];
    i /= n;
  }
  return offset;
}
