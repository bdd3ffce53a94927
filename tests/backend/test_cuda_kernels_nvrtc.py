"""Every kernels/cuda source compiles with NVRTC, as CuPy compiles it on a GPU: no host headers, so a kernel
that leans on one (INFINITY from math.h) is caught here, where nvcc and the simulator would accept it."""
from pathlib import Path

import pytest

from needle.backend_ndarray import nvrtc

SOURCES = sorted((Path(__file__).resolve().parents[2] / "kernels" / "cuda").glob("*.cu"))


@pytest.mark.skipif(nvrtc.library_path() is None, reason="NVRTC is not installed (the dev extra brings it on Linux)")
@pytest.mark.parametrize("dtype_flag", [[], ["-DNEEDLE_DTYPE_F64"]], ids=["f32", "f64"])
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_kernel_source_compiles_with_nvrtc(source, dtype_flag):
    ok, log = nvrtc.compile_ptx(source.read_text(), source.name,
                                ["-std=c++17", f"-I{source.parent}", "--gpu-architecture=compute_90", *dtype_flag])
    assert ok, log


@pytest.mark.skipif(nvrtc.library_path() is None, reason="NVRTC is not installed")
def test_nvrtc_rejects_host_only_names():
    ok, log = nvrtc.compile_ptx('extern "C" __global__ void f(float* o) { o[0] = INFINITY; }', "bad.cu", [])
    assert not ok and "INFINITY" in log
