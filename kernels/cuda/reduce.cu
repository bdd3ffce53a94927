// Reductions of a compact (outer, reduce, inner) array over its middle axis into (outer, inner).
//  - *_serial: one thread per output element, looping over the reduced axis (consecutive threads read
//    consecutive columns when inner > 1, so the loads coalesce);
//  - *_rows (inner == 1, long rows): one block per row, a per-thread partial, then a tree: warp shuffles
//    inside each warp, shared memory across the warps.
#include "common.cuh"

#include "block_reduce.cuh"

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
