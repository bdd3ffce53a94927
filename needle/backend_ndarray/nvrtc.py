"""NVRTC, CUDA's runtime compiler, through ctypes: compiles CUDA source to PTX without a GPU.

CuPy compiles needle's kernels with NVRTC on a GPU, and NVRTC, unlike nvcc, includes no host headers: a kernel
that uses one (INFINITY from math.h, say) compiles with nvcc and in the simulator yet fails on the GPU. The
library comes from the `nvidia-cuda-nvrtc` wheel (the dev extra) or the system's CUDA.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import importlib.util
import os


def library_path() -> str | None:
    """libnvrtc from the nvidia-cuda-nvrtc wheel, else the system's, else None."""
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(glob.glob(os.path.join(root, "cu*", "lib", "libnvrtc.so*")) +
                       glob.glob(os.path.join(root, "cuda_nvrtc", "lib", "libnvrtc.so*")))
        if found:
            return found[0]
    return ctypes.util.find_library("nvrtc")


def compile_ptx(source: str, name: str, options: list[str]) -> tuple[bool, str]:
    """(compiled, NVRTC's log) for `source` with `options` (e.g. -I, -D, --gpu-architecture=compute_90)."""
    path = library_path()
    if path is None:
        raise FileNotFoundError("NVRTC is not installed (pip install nvidia-cuda-nvrtc)")
    lib = ctypes.CDLL(path)
    program = ctypes.c_void_p()
    if lib.nvrtcCreateProgram(ctypes.byref(program), source.encode(), name.encode(), 0, None, None) != 0:
        raise RuntimeError("nvrtcCreateProgram failed")
    try:
        opts = (ctypes.c_char_p * len(options))(*(o.encode() for o in options))
        result = lib.nvrtcCompileProgram(program, len(options), opts)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(program, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(program, log)
        return result == 0, log.value.decode(errors="replace")
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(program))
