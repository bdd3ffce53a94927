// Strided copies: gather a view into a dense buffer (compact), scatter a dense buffer or a scalar into a view.
#include "common.cuh"

extern "C" __global__ void KERNEL(fill)(scalar_t* out, scalar_t val, idx_t n) {
  FOR_EACH_INDEX(i, n) out[i] = val;
}

extern "C" __global__ void KERNEL(compact)(const scalar_t* a, scalar_t* out, const idx_t* meta, int ndim, idx_t offset,
                                           idx_t n) {
  FOR_EACH_INDEX(i, n) out[i] = a[strided_offset(i, meta, ndim, offset)];
}

extern "C" __global__ void KERNEL(ewise_setitem)(const scalar_t* a, scalar_t* out, const idx_t* meta, int ndim,
                                                 idx_t offset, idx_t n) {
  FOR_EACH_INDEX(i, n) out[strided_offset(i, meta, ndim, offset)] = a[i];
}

extern "C" __global__ void KERNEL(scalar_setitem)(scalar_t val, scalar_t* out, const idx_t* meta, int ndim,
                                                  idx_t offset, idx_t n) {
  FOR_EACH_INDEX(i, n) out[strided_offset(i, meta, ndim, offset)] = val;
}
