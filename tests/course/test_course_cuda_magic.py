"""needle/course/cuda_magic.py: a plain `%%needle_cuda` cell (no exercise id) compiled into the active CUDA device,
here the simulator: its kernels replace needle's of the same name until course.reset()."""
import numpy as np
import pytest

import needle.backend_ndarray as nd
from needle.backend_ndarray.cuda_sim_build import CudaCompileError
from needle.course import cuda_magic

pytestmark = pytest.mark.skipif(not nd.cuda_sim().enabled(), reason="the CUDA simulator is not built")

WRONG_ADD = """
extern "C" __global__ void ewise_add_f32(const float* a, const float* b, float* out, long long n) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x)
    out[i] = a[i] - b[i];
}
"""


@pytest.fixture(autouse=True)
def builtins_back():
    yield
    cuda_magic.reset()


def _add(device):
    a = nd.array(np.array([1.0, 2.0, 3.0], dtype=np.float32), device=device)
    return (a + a).numpy().tolist()


def test_without_a_gpu_the_active_device_is_the_simulator():
    assert nd.cuda().enabled() or cuda_magic.active_device() is nd.cuda_sim()


def test_a_cell_replaces_needles_kernel_of_that_name_until_reset(capsys):
    device = cuda_magic.active_device()
    cuda_magic.needle_cuda("", WRONG_ADD)
    assert capsys.readouterr().out == f"compiled for {device} and installed: ewise_add_f32\n"
    assert _add(device) == [0.0, 0.0, 0.0]
    cuda_magic.reset()
    assert _add(device) == [2.0, 4.0, 6.0]
    assert cuda_magic.install_cell(WRONG_ADD) == ["ewise_add_f32"]  # the active device by default
    assert _add(device) == [0.0, 0.0, 0.0]


def test_a_cell_that_does_not_compile_shows_the_compiler_and_installs_nothing(capsys):
    with pytest.raises(CudaCompileError, match=r"^the cell's kernels were not installed \(see the compiler's errors"):
        cuda_magic.needle_cuda("", WRONG_ADD.replace("out[i] =", "out[i] = undeclared +"))
    assert "undeclared" in capsys.readouterr().err
    assert _add(cuda_magic.active_device()) == [2.0, 4.0, 6.0]
