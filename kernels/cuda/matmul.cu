// Matrix products.
//  - matmul_naive: one thread per output element (the course's first CUDA matmul).
//  - matmul_shared: 16 x 16 tiles of A and B staged in shared memory, one output per thread (the course's
//    lesson: each global element is read n / 16 times instead of n times).
//  - matmul_tiled: the course's 8 x 8 tiled layout (as cpu()'s matmul_tiled).
//  - matmul_strided: what the library uses. A block computes a 64 x 64 tile of C for one batch entry; each of
//    its 256 threads keeps a 4 x 4 block of C in registers, so a value loaded from shared memory serves four
//    multiply-adds. A and B are read through their strides, so transposed views need no copy.
#include "common.cuh"

extern "C" __global__ void KERNEL(matmul_naive)(const scalar_t* a, const scalar_t* b, scalar_t* out, idx_t m, idx_t n,
                                                idx_t p) {
  FOR_EACH_INDEX(o, m * p) {
    const idx_t i = o / p, j = o % p;
    scalar_t acc = 0;
    for (idx_t k = 0; k < n; ++k) acc += a[i * n + k] * b[k * p + j];
    out[o] = acc;
  }
}

#define SHARED_TILE 16

extern "C" __global__ void KERNEL(matmul_shared)(const scalar_t* a, const scalar_t* b, scalar_t* out, idx_t m, idx_t n,
                                                 idx_t p) {
  __shared__ scalar_t as[SHARED_TILE][SHARED_TILE];
  __shared__ scalar_t bs[SHARED_TILE][SHARED_TILE];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const idx_t row = (idx_t)blockIdx.y * SHARED_TILE + ty, col = (idx_t)blockIdx.x * SHARED_TILE + tx;
  scalar_t acc = 0;
  for (idx_t k0 = 0; k0 < n; k0 += SHARED_TILE) {
    as[ty][tx] = (row < m && k0 + tx < n) ? a[row * n + k0 + tx] : scalar_t(0);
    bs[ty][tx] = (k0 + ty < n && col < p) ? b[(k0 + ty) * p + col] : scalar_t(0);
    __syncthreads();
    for (int k = 0; k < SHARED_TILE; ++k) acc += as[ty][k] * bs[k][tx];
    __syncthreads();
  }
  if (row < m && col < p) out[row * p + col] = acc;
}

#define TILE 8

extern "C" __global__ void KERNEL(matmul_tiled)(const scalar_t* a, const scalar_t* b, scalar_t* out, idx_t m, idx_t n,
                                                idx_t p) {
  const idx_t nt = n / TILE, pt = p / TILE;
  FOR_EACH_INDEX(o, m * p) {
    const idx_t tile = o / (TILE * TILE), r = o / TILE % TILE, c = o % TILE;
    const idx_t i = tile / pt, j = tile % pt;
    scalar_t acc = 0;
    for (idx_t k = 0; k < nt; ++k)
      for (int s = 0; s < TILE; ++s) acc += a[((i * nt + k) * TILE + r) * TILE + s] * b[((k * pt + j) * TILE + s) * TILE + c];
    out[o] = acc;
  }
}

#define BM 64
#define BN 64
#define BK 16
#define TM 4
#define TN 4
#define MATMUL_THREADS 256  // (BM / TM) * (BN / TN)

extern "C" __global__ void KERNEL(matmul_strided)(const scalar_t* a, const scalar_t* b, scalar_t* out, idx_t batch,
                                                  idx_t m, idx_t n, idx_t p, idx_t a_offset, idx_t a_sb, idx_t a_sm,
                                                  idx_t a_sn, idx_t b_offset, idx_t b_sb, idx_t b_sn, idx_t b_sp) {
  __shared__ scalar_t as[BK][BM];  // as[k][i] = A[i][k]: threads read along i
  __shared__ scalar_t bs[BK][BN];
  const int t = threadIdx.x, ti = t / (BN / TN), tj = t % (BN / TN);
  const idx_t row0 = (idx_t)blockIdx.y * BM, col0 = (idx_t)blockIdx.x * BN;
  for (idx_t z = blockIdx.z; z < batch; z += gridDim.z) {
    const scalar_t* A = a + a_offset + z * a_sb;
    const scalar_t* B = b + b_offset + z * b_sb;
    scalar_t acc[TM][TN];
    for (int i = 0; i < TM; ++i)
      for (int j = 0; j < TN; ++j) acc[i][j] = 0;
    for (idx_t k0 = 0; k0 < n; k0 += BK) {
      for (int e = t; e < BM * BK; e += MATMUL_THREADS) {
        const int i = e / BK, k = e % BK;
        const idx_t gi = row0 + i, gk = k0 + k;
        as[k][i] = (gi < m && gk < n) ? A[gi * a_sm + gk * a_sn] : scalar_t(0);
      }
      for (int e = t; e < BK * BN; e += MATMUL_THREADS) {
        const int k = e / BN, j = e % BN;
        const idx_t gk = k0 + k, gj = col0 + j;
        bs[k][j] = (gk < n && gj < p) ? B[gk * b_sn + gj * b_sp] : scalar_t(0);
      }
      __syncthreads();
      for (int k = 0; k < BK; ++k) {
        scalar_t ar[TM], br[TN];
        for (int i = 0; i < TM; ++i) ar[i] = as[k][ti * TM + i];
        for (int j = 0; j < TN; ++j) br[j] = bs[k][tj * TN + j];
        for (int i = 0; i < TM; ++i)
          for (int j = 0; j < TN; ++j) acc[i][j] += ar[i] * br[j];
      }
      __syncthreads();
    }
    scalar_t* C = out + z * m * p;
    for (int i = 0; i < TM; ++i)
      for (int j = 0; j < TN; ++j) {
        const idx_t gi = row0 + ti * TM + i, gj = col0 + tj * TN + j;
        if (gi < m && gj < p) C[gi * p + gj] = acc[i][j];
      }
  }
}
