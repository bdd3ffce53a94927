// Kernels for cuda_sim_test.cc (the simulator's fibers without Python). Written as kernels/cuda/*.cu are;
// tests/native/run.sh turns this file into a kernel table with needle/backend_ndarray/cuda_sources.py.

// reverses each block's slice through shared memory: needs the barrier between the write and the read
extern "C" __global__ void reverse_blocks(const float* a, float* out) {
  __shared__ float buf[256];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  buf[threadIdx.x] = a[i];
  __syncthreads();
  out[i] = buf[blockDim.x - 1 - threadIdx.x];
}

// a shared-memory tree sum per block: log2(blockDim.x) barriers, each a switch of every thread
extern "C" __global__ void block_sums(const double* a, double* out) {
  __shared__ double buf[256];
  unsigned t = threadIdx.x;
  buf[t] = a[blockIdx.x * blockDim.x + t];
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
    if (t < s) buf[t] += buf[t + s];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = buf[0];
}

extern "C" __global__ void warp_sums(const float* a, float* out) {
  float v = a[blockIdx.x * blockDim.x + threadIdx.x];
  for (int d = 16; d > 0; d /= 2) v += __shfl_down_sync(0xffffffffu, v, d);
  if (threadIdx.x % 32 == 0) out[(blockIdx.x * blockDim.x + threadIdx.x) / 32] = v;
}

// the classic bug: threads past n return and never reach the barrier
extern "C" __global__ void early_return(float* out, int n) {
  __shared__ float buf[64];
  int i = threadIdx.x;
  if (i >= n) return;
  buf[i] = i;
  __syncthreads();
  out[i] = buf[n - 1 - i];
}

extern "C" __global__ void reverse_blocks_no_barrier(const float* a, float* out) {
  __shared__ float buf[256];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  buf[threadIdx.x] = a[i];
  out[i] = buf[blockDim.x - 1 - threadIdx.x];
}

extern "C" __global__ void off_by_one(const float* a, float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) out[i] = a[i] * 2.0f;  // <= : one element too far
}
