"""cuda()'s launcher (CupyExecutor) without a GPU: a stand-in for CuPy whose kernels are the simulator's, so every
launch runs the real kernel and every argument is checked against the kernel's parameter types exactly as a
GPU would need them (a float32 where the kernel takes float, an int32 where it takes int, ...)."""
import sys

import numpy as np
import pytest

import needle.backend_ndarray as nd
from needle.backend_ndarray.ndarray_backend_cuda import CudaBackend, CupyExecutor

from cuda_cases import fake_cupy

pytestmark = pytest.mark.skipif(not nd.cuda_sim().enabled(), reason="the CUDA simulator is not built")

@pytest.fixture
def gpu(monkeypatch):
    cupy, launches = fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    device = nd.BackendDevice("cuda", CudaBackend(CupyExecutor(cupy)))
    device.launches = launches
    return device


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_launch_passes_the_kernels_exact_parameter_types(gpu, dtype):
    import needle as ndl
    from needle import nn

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5, 3))
    a = nd.array(x, device=gpu, dtype=dtype)
    np.testing.assert_allclose(a.permute((2, 0, 1)).compact().numpy(), x.transpose(2, 0, 1), rtol=1e-6)
    np.testing.assert_allclose((a * 2 + a).exp().sum(axis=(0, 2)).numpy(), np.exp(3 * x).sum(axis=(0, 2)), rtol=1e-5)
    np.testing.assert_allclose((a[:, 1:3, :] @ a.permute((0, 2, 1))[:, :, 0:2]).numpy(),
                               x[:, 1:3, :] @ x.transpose(0, 2, 1)[:, :, 0:2], rtol=1e-5)
    b = nd.array(np.zeros((4, 5, 3)), device=gpu, dtype=dtype)
    b[1:3, :, 0] = a[0:2, :, 1]
    b[..., 2] = 7.0
    np.testing.assert_array_equal(b.numpy()[1:3, :, 0], x.astype(dtype)[0:2, :, 1])
    # a training step with the fused ops and Adam: their launches too
    np.random.seed(0)
    model = nn.Sequential(nn.Linear(3, 6, device=gpu, dtype=dtype), nn.LayerNorm1d(6, device=gpu, dtype=dtype),
                          nn.BatchNorm1d(6, device=gpu, dtype=dtype))
    opt = ndl.optim.Adam(model.parameters(), lr=0.01)
    emb = nn.Embedding(10, 3, device=gpu, dtype=dtype)
    ids = ndl.Tensor(np.array([[1, 2], [3, 9]]), device=gpu, dtype=dtype)
    loss = nn.SoftmaxLoss()(model(emb(ids).reshape((4, 3))), ndl.Tensor([0, 1, 5, 2], device=gpu, dtype=dtype))
    loss.backward()
    opt.step()
    conv = nn.Conv(3, 4, 3, stride=2, device=gpu, dtype=dtype)  # im2col, and col2im for its input gradient
    conv(ndl.Tensor(rng.standard_normal((2, 3, 5, 5)), device=gpu, dtype=dtype)).sum().backward()
    used = set(gpu.launches)
    for kernel in ("compact", "ewise_setitem", "scalar_setitem", "matmul_strided", "reduce_sum_serial", "adam_step",
                   "embedding_gather", "embedding_scatter_add", "softmax_xent_serial", "layernorm_forward",
                   "batchnorm_backward", "im2col", "col2im"):
        assert kernel + ("_f64" if dtype == "float64" else "_f32") in used
