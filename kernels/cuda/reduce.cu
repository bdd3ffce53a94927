// Reductions of a compact (outer, reduce, inner) array over its middle axis into (outer, inner).
//  - *_serial: one thread per output element, looping over the reduced axis (consecutive threads read
//    consecutive columns when inner > 1, so the loads coalesce);
//  - *_rows (inner == 1, long rows): one block per row, a per-thread partial, then a tree: warp shuffles
//    inside each warp, shared memory across the warps.
#include "common.cuh"

#define REDUCE_THREADS 256

namespace {
struct SumOp {
  __device__ scalar_t init() const { return scalar_t(0); }
  __device__ scalar_t operator()(scalar_t x, scalar_t y) const { return x + y; }
};
struct MaxOp {
  __device__ scalar_t init() const { return -scalar_t(INFINITY); }
  __device__ scalar_t operator()(scalar_t x, scalar_t y) const { return nd_max(x, y); }
};
}  // namespace

template <typename Op>
static __device__ __forceinline__ void reduce_serial(const scalar_t* a, scalar_t* out, idx_t outer, idx_t reduce,
                                                     idx_t inner, Op op) {
  FOR_EACH_INDEX(o, outer * inner) {
    const scalar_t* p = a + (o / inner) * reduce * inner + o % inner;
    scalar_t acc = op.init();
    for (idx_t r = 0; r < reduce; ++r) acc = op(acc, p[r * inner]);
    out[o] = acc;
  }
}

/// The block's REDUCE_THREADS values combined; the result is valid in thread 0.
template <typename Op>
static __device__ __forceinline__ scalar_t block_reduce(scalar_t v, Op op) {
  __shared__ scalar_t warp_results[REDUCE_THREADS / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int d = 16; d > 0; d /= 2) v = op(v, __shfl_down_sync(0xffffffffu, v, d));
  if (lane == 0) warp_results[warp] = v;
  __syncthreads();
  v = threadIdx.x < REDUCE_THREADS / 32 ? warp_results[threadIdx.x] : op.init();
  if (warp == 0)
    for (int d = REDUCE_THREADS / 64; d > 0; d /= 2) v = op(v, __shfl_down_sync(0xffffffffu, v, d));
  __syncthreads();  // warp_results is reused by the next row
  return v;
}

template <typename Op>
static __device__ __forceinline__ void reduce_rows(const scalar_t* a, scalar_t* out, idx_t outer, idx_t reduce, Op op) {
  for (idx_t row = blockIdx.x; row < outer; row += gridDim.x) {
    scalar_t acc = op.init();
    for (idx_t r = threadIdx.x; r < reduce; r += blockDim.x) acc = op(acc, a[row * reduce + r]);
    acc = block_reduce(acc, op);
    if (threadIdx.x == 0) out[row] = acc;
  }
}

extern "C" __global__ void KERNEL(reduce_sum_serial)(const scalar_t* a, scalar_t* out, idx_t outer, idx_t reduce, idx_t inner) {
  reduce_serial(a, out, outer, reduce, inner, SumOp());
}
extern "C" __global__ void KERNEL(reduce_max_serial)(const scalar_t* a, scalar_t* out, idx_t outer, idx_t reduce, idx_t inner) {
  reduce_serial(a, out, outer, reduce, inner, MaxOp());
}
extern "C" __global__ void KERNEL(reduce_sum_rows)(const scalar_t* a, scalar_t* out, idx_t outer, idx_t reduce) {
  reduce_rows(a, out, outer, reduce, SumOp());
}
extern "C" __global__ void KERNEL(reduce_max_rows)(const scalar_t* a, scalar_t* out, idx_t outer, idx_t reduce) {
  reduce_rows(a, out, outer, reduce, MaxOp());
}
