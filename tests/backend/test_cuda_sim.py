"""The CUDA simulator itself: barrier semantics, shared memory per block, warp shuffles, argument checks, and the
checked mode's reports on planted bugs (out of bounds, divergent barrier, missing __syncthreads)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import needle.backend_ndarray as nd

sim_device = nd.cuda_sim()
pytestmark = pytest.mark.skipif(not sim_device.enabled(), reason="the CUDA simulator is not built")

if sim_device.enabled():
    from needle.backend_ndarray import ndarray_backend_cuda_sim as sim
    from needle.backend_ndarray.cuda_sim_build import CudaCompileError, compile_kernels

KERNELS = r"""
// reverses each block's slice through shared memory: needs the barrier between the write and the read
extern "C" __global__ void reverse_blocks(const float* a, float* out) {
  __shared__ float buf[256];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  buf[threadIdx.x] = a[i];
  __syncthreads();
  out[i] = buf[blockDim.x - 1 - threadIdx.x];
}

extern "C" __global__ void reverse_blocks_no_barrier(const float* a, float* out) {
  __shared__ float buf[256];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  buf[threadIdx.x] = a[i];
  out[i] = buf[blockDim.x - 1 - threadIdx.x];
}

extern "C" __global__ void warp_sums(const float* a, float* out) {
  float v = a[blockIdx.x * blockDim.x + threadIdx.x];
  for (int d = 16; d > 0; d /= 2) v += __shfl_down_sync(0xffffffffu, v, d);
  if (threadIdx.x % 32 == 0) out[(blockIdx.x * blockDim.x + threadIdx.x) / 32] = v;
}

extern "C" __global__ void early_return(float* out, int n) {
  __shared__ float buf[64];
  int i = threadIdx.x;
  if (i >= n) return;  // the classic bug: these threads never reach the barrier
  buf[i] = i;
  __syncthreads();
  out[i] = buf[n - 1 - i];
}

extern "C" __global__ void two_barriers(float* out) {
  if (threadIdx.x % 2) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1.0f;
}

extern "C" __global__ void off_by_one(const float* a, float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) out[i] = a[i] * 2.0f;  // <= : one element too far
}

extern "C" __global__ void reads_before_start(const float* a, float* out, int n) {
  int i = threadIdx.x;
  if (i < n) out[i] = a[i - 1];
}

extern "C" __global__ void shared_overflow(float* out) {
  __shared__ float tile[8];
  tile[threadIdx.x] = threadIdx.x;  // launched with 9 threads
  __syncthreads();
  out[threadIdx.x] = tile[0];
}

extern "C" __global__ void atomic_count(float* total, long long* hits, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    atomicAdd(total, 0.5f);
    atomicAdd(hits, 1LL);
  }
}

extern "C" __global__ void takes_scalars(float* out, float x, double y, long long z, int w) {
  out[0] = x + (float)y + (float)z + (float)w;
}
"""


@pytest.fixture(scope="module")
def k():
    return compile_kernels(KERNELS)


def buf(values, dtype="float32"):
    values = np.asarray(values, dtype=dtype)
    a = sim.Array(values.size, dtype)
    np.asarray(a)[:] = values.reshape(-1)
    return a


def host(a):
    return np.asarray(a).copy()


def test_barrier_makes_every_write_visible_to_the_block(k):
    x = np.arange(8 * 256, dtype=np.float32)
    out = sim.Array(x.size)
    for checked in (False, True):
        k["reverse_blocks"](8, 256, [buf(x), out], checked=checked)
        np.testing.assert_array_equal(host(out), x.reshape(8, 256)[:, ::-1].reshape(-1))


def test_blocks_running_in_parallel_each_have_their_own_shared_memory(k):
    x = np.random.default_rng(0).standard_normal(64 * 256).astype(np.float32)
    out = sim.Array(x.size)
    k["reverse_blocks"](64, 256, [buf(x), out], threads=2)
    np.testing.assert_array_equal(host(out), x.reshape(64, 256)[:, ::-1].reshape(-1))


def test_warp_shuffles_exchange_values_between_lanes(k):
    x = np.random.default_rng(1).standard_normal(4 * 128).astype(np.float32)
    out = sim.Array(16)
    k["warp_sums"](4, 128, [buf(x), out])
    np.testing.assert_allclose(host(out), x.reshape(16, 32).sum(axis=1), rtol=1e-5)


def test_a_thread_that_returns_before_a_barrier_is_reported_not_a_hang(k):
    with pytest.raises(RuntimeError, match=r"early_return: thread \(40, 0, 0\) of block \(0, 0, 0\) returned while "
                                           r"40 threads of its block wait at __syncthreads\(\)"):
        k["early_return"](1, 64, [sim.Array(64), 40])


def test_barriers_on_different_lines_are_divergent(k):
    with pytest.raises(RuntimeError, match=r"two_barriers: divergent __syncthreads\(\)"):
        k["two_barriers"](1, 32, [sim.Array(32)])


def test_checked_mode_names_the_thread_of_an_out_of_bounds_write(k):
    a, out = buf(np.ones(100)), sim.Array(100)
    k["off_by_one"](1, 128, [a, out, 99])  # in range: fine in both modes
    k["off_by_one"](1, 128, [a, out, 99], checked=True)
    with pytest.raises(RuntimeError, match=r"off_by_one: thread \(100, 0, 0\) of block \(0, 0, 0\): out-of-bounds "
                                           r"(write|access) of argument [01] at element 100 \(it has 100 elements\)"):
        k["off_by_one"](1, 128, [a, out, 100], checked=True)


def test_checked_mode_catches_reads_before_the_start(k):
    with pytest.raises(RuntimeError, match=r"out-of-bounds access of argument 0 at element -1"):
        k["reads_before_start"](1, 32, [buf(np.ones(32)), sim.Array(32), 32], checked=True)


def test_shared_memory_indices_are_bounds_checked(k):
    with pytest.raises(RuntimeError, match=r"shared_overflow: thread \(8, 0, 0\) .*index 8 is out of bounds"):
        k["shared_overflow"](1, 9, [sim.Array(9)])


def test_checked_mode_reports_a_missing_syncthreads(k):
    x = np.arange(256, dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"reverse_blocks_no_barrier: the result depends on the order in which "
                                           r"threads run \(a missing __syncthreads\(\)"):
        k["reverse_blocks_no_barrier"](1, 256, [buf(x), sim.Array(256)], checked=True)


def test_atomics_are_atomic_across_parallel_blocks(k):
    total, hits = buf([0.0]), buf([0], "int64")
    k["atomic_count"](64, 128, [total, hits, 8000], threads=2)
    assert host(hits)[0] == 8000 and host(total)[0] == 4000.0
    k["atomic_count"](64, 128, [buf([0.0]), buf([0], "int64"), 8000], checked=True)  # float atomics: no false race


def test_arguments_are_converted_and_checked(k):
    out = sim.Array(1)
    k["takes_scalars"](1, 1, [out, 1.5, 2.25, 3, np.int32(4)])
    assert host(out)[0] == 10.75
    with pytest.raises(TypeError, match=r"takes 5 arguments, got 2"):
        k["takes_scalars"](1, 1, [out, 1.0])
    with pytest.raises(TypeError, match=r"argument 0 \(float\*\) got NoneType"):
        k["takes_scalars"](1, 1, [None, 1.0, 2.0, 3, 4])
    with pytest.raises(TypeError, match=r"argument 0 \(float\*\) got a float64 buffer"):
        k["takes_scalars"](1, 1, [sim.Array(1, "float64"), 1.0, 2.0, 3, 4])
    with pytest.raises(ValueError, match=r"argument 4 \(int\) out of range"):
        k["takes_scalars"](1, 1, [out, 1.0, 2.0, 3, 2**40])
    with pytest.raises(ValueError, match=r"a block has 1 to 1024 threads"):
        k["takes_scalars"](1, 2048, [out, 1.0, 2.0, 3, 4])


def test_compile_errors_point_into_the_cell():
    with pytest.raises(CudaCompileError, match=r"cell.cu:2"):
        compile_kernels('extern "C" __global__ void broken(float* out) {\n  out[0] = undefined_name;\n}\n')


def test_builtin_kernels_are_listed_for_both_dtypes():
    names = sim.builtin_kernels()
    for base in ("compact", "ewise_add", "reduce_sum_rows", "matmul_strided", "matmul_shared", "adam_step"):
        assert base + "_f32" in names and base + "_f64" in names


@pytest.mark.parametrize("kernel", ["matmul_shared", "matmul_naive", "matmul"])
def test_course_matmul_kernels_against_numpy(kernel):
    rng = np.random.default_rng(2)
    for m, n, p in [(1, 1, 1), (17, 33, 5), (64, 16, 70)]:
        a, b = rng.standard_normal((m, n)), rng.standard_normal((n, p))
        A, B = nd.array(a, device=sim_device), nd.array(b, device=sim_device)
        out = nd.empty((m, p), device=sim_device)
        with sim_device.checked():
            getattr(sim_device, kernel)(A._handle, B._handle, out._handle, m, n, p)
        np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-4, atol=1e-4)


def test_library_kernels_pass_the_checked_mode():
    """Every op of a small training step, under the sanitizer: no race, no out-of-bounds access."""
    import needle as ndl
    from needle import nn

    np.random.seed(0)
    with sim_device.checked():
        model = nn.Sequential(nn.Linear(5, 70, device=sim_device), nn.ReLU(), nn.Linear(70, 3, device=sim_device))
        x = ndl.Tensor(np.random.randn(33, 5), device=sim_device, dtype="float32")
        loss = (model(x) * model(x)).sum(axes=(1,)).sum() + ndl.ops.log(ndl.ops.summation(ndl.ops.exp(x)))
        loss.backward()
        emb, lstm = nn.Embedding(1100, 6, device=sim_device), nn.LSTM(6, 8, device=sim_device)
        norm, bn = nn.LayerNorm1d(8, device=sim_device), nn.BatchNorm1d(8, device=sim_device)
        head = nn.Linear(8, 1100, device=sim_device)  # 1100 classes: the block-per-row softmax kernel
        ids = ndl.Tensor(np.random.randint(0, 1100, (3, 2)), device=sim_device)
        out, _ = lstm(emb(ids))
        logits = head(bn(norm(out.reshape((6, 8)))))
        nn.SoftmaxLoss()(logits, ndl.Tensor(np.random.randint(0, 1100, 6), device=sim_device)).backward()
        assert emb.weight.grad.shape == (1100, 6)
        big = nd.array(np.random.randn(3, 2000), device=sim_device)
        np.testing.assert_allclose(big.sum(axis=1).numpy(), big.numpy().sum(axis=1), rtol=1e-4)
        np.testing.assert_allclose(big.max(axis=1).numpy(), big.numpy().max(axis=1))
    assert model.modules[0].weight.grad.shape == (5, 70)


@settings(max_examples=1000)
@given(st.data())
def test_random_strided_views_compact_and_setitem_like_numpy(data):
    """Random shapes, strides (negative and zero too) and offsets: the strided kernels agree with numpy."""
    ndim = data.draw(st.integers(0, 4))
    shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
    strides = tuple(data.draw(st.lists(st.integers(-7, 7), min_size=ndim, max_size=ndim)))
    lo = sum((n - 1) * s for n, s in zip(shape, strides) if s < 0)
    hi = sum((n - 1) * s for n, s in zip(shape, strides) if s > 0)
    offset = -lo + data.draw(st.integers(0, 3))
    size = offset + hi + 1 + data.draw(st.integers(0, 3))
    base = np.arange(size, dtype=np.float64)
    arr = nd.array(base, device=sim_device, dtype="float64")
    view = nd.NDArray.make(shape, strides, sim_device, arr._handle, offset)
    expected = np.lib.stride_tricks.as_strided(base[offset:], shape, tuple(8 * s for s in strides))
    np.testing.assert_array_equal(view.compact().numpy(), expected)
    view[...] = 0.5
    assert np.all(view.numpy() == 0.5)


def test_needle_cuda_magic_installs_a_cells_kernel_into_the_device(capsys):
    from needle.course import cuda_magic

    doubled_add = r"""
    extern "C" __global__ void ewise_add_f32(const float* a, const float* b, float* out, long long n) {
      for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        out[i] = 2 * (a[i] + b[i]);
    }"""
    x = nd.array([1.0, 2.0], device=sim_device)
    try:
        cuda_magic.needle_cuda("", doubled_add)
        assert "installed: ewise_add_f32" in capsys.readouterr().out
        np.testing.assert_array_equal((x + x).numpy(), [4.0, 8.0])  # every NDArray add now runs the cell's kernel
    finally:
        cuda_magic.reset()
    np.testing.assert_array_equal((x + x).numpy(), [2.0, 4.0])
    with pytest.raises(CudaCompileError):
        cuda_magic.needle_cuda("", 'extern "C" __global__ void f(float* o) { o[0] = nope; }')
    assert "cell.cu:1" in capsys.readouterr().err
