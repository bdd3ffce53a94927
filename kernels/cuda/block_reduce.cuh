// Reductions inside one block of REDUCE_THREADS threads: warp shuffles within each warp, then shared memory
// across the warps. Shared by the reduction and fused kernels.
#pragma once
#include "common.cuh"

#define REDUCE_THREADS 256

namespace {
struct SumOp {
  __device__ scalar_t init() const { return scalar_t(0); }
  __device__ scalar_t operator()(scalar_t x, scalar_t y) const { return x + y; }
};
struct MaxOp {
  __device__ scalar_t init() const { return -nd_inf(); }
  __device__ scalar_t operator()(scalar_t x, scalar_t y) const { return nd_max(x, y); }
};
}  // namespace

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

/// The block's REDUCE_THREADS values combined, returned to every thread.
template <typename Op>
static __device__ __forceinline__ scalar_t block_all_reduce(scalar_t v, Op op) {
  __shared__ scalar_t result;
  v = block_reduce(v, op);
  if (threadIdx.x == 0) result = v;
  __syncthreads();
  v = result;
  __syncthreads();  // result is reused by the next call
  return v;
}
