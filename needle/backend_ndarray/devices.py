"""The devices an NDArray lives on: `BackendDevice` (a name plus the module of its flat-buffer kernels), the four the
course knows (cpu, cpu_numpy, cuda, cuda_sim) and the default one (NEEDLE_DEVICE chooses another).

This module knows no NDArray: a device makes arrays through `BackendDevice.array_type`, which ndarray.py sets once
NDArray exists (NDArray needs the devices first).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from ..labels import integer_labels
from . import layout, ndarray_backend_cuda, ndarray_backend_numpy
from .dtypes import dtype_name

if TYPE_CHECKING:  # for the annotations only: at run time a device reaches NDArray through array_type
    from .ndarray import NDArray

# Idle OpenMP workers spin for a while (100,000 pauses: about 3 ms) before they sleep: long enough to stay
# awake through a training step's gaps between kernels (waking a sleeping one costs ~40 us, more than a
# 128^3 product), short enough not to hold a core that another process wants (spinning without bound made
# an MLP step 13x slower on 2 busy cores). libgomp's own default is 300,000; it is shared with PyTorch. A
# wait policy or spin count set by the user wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "100000")

try:  # the compiled CPU backend; without it needle still works on cpu_numpy()
    if os.environ.get("NEEDLE_CPU_MODULE"):  # another build of it (tools/cpu_build.py: clang, no OpenMP)
        import importlib.util
        _spec = importlib.util.spec_from_file_location(__package__ + ".ndarray_backend_cpu", os.environ["NEEDLE_CPU_MODULE"])
        ndarray_backend_cpu = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(ndarray_backend_cpu)
    else:
        from . import ndarray_backend_cpu
except ImportError as _cpu_import_error:  # pragma: no cover - depends on the build
    ndarray_backend_cpu = None
    _CPU_MISSING = f"the C++ CPU backend is not built ({_cpu_import_error}); reinstall with `pip install -e .`"
else:
    _CPU_MISSING = ""

__all__ = ["BackendDevice", "cpu", "cpu_numpy", "cuda", "cuda_sim", "default_device", "all_devices"]


class BackendDevice:
    """A device: a name plus the module holding its flat-buffer kernels (attributes forward to it)."""

    array_type: type  # the array class a device makes (NDArray; set by ndarray.py)

    def __init__(self, name: str, mod, missing: str = ""):
        self.name = name
        self.mod = mod
        self._missing = missing or f"device {name}() is not available on this machine"
        # the module counts its own buffers' bytes (the C++ CPU backend): NDArray need not track them
        self.counts_memory = mod is not None and hasattr(mod, "memory_stats")

    def __eq__(self, other) -> bool:
        return isinstance(other, BackendDevice) and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return self.name + "()"

    def __getattr__(self, name: str):
        mod = self.__dict__.get("mod")
        if mod is None:
            if name.startswith("__"):  # copy/pickle probing optional hooks: not a use of the device
                raise AttributeError(name)
            raise RuntimeError(self.__dict__.get("_missing", "device not available"))
        try:
            return getattr(mod, name)
        except AttributeError:
            raise AttributeError(f"device {self.name}() has no kernel {name!r}") from None

    # a device is a stateless handle on a kernel module: copies are the device itself, pickles name it
    def __copy__(self) -> "BackendDevice":
        return self

    def __deepcopy__(self, memo) -> "BackendDevice":
        return self

    def __reduce__(self):
        if self.name not in _FACTORIES:
            raise TypeError(f"device {self} cannot be pickled: only {', '.join(_FACTORIES)} can")
        return _FACTORIES[self.name], ()

    def enabled(self) -> bool:
        return self.mod is not None

    def _check(self) -> None:
        if self.mod is None:
            raise RuntimeError(self._missing)

    def randn(self, *shape, dtype="float32") -> NDArray:
        """Standard normal samples, drawn from numpy's global RNG as the course does."""
        self._check()
        return self.array_type(np.random.randn(*shape).astype(dtype_name(dtype)), device=self)

    def rand(self, *shape, dtype="float32") -> NDArray:
        """Uniform [0, 1) samples, drawn from numpy's global RNG as the course does."""
        self._check()
        return self.array_type(np.random.rand(*shape).astype(dtype_name(dtype)), device=self)

    def one_hot(self, n: int, i, dtype="float32") -> NDArray:
        """Rows of the n x n identity selected by the integer labels `i` (the course's np.eye(n)[i])."""
        self._check()
        i = integer_labels(i, n, "one_hot")
        rows = np.zeros(i.shape + (n,), dtype=dtype_name(dtype))  # never the n x n identity itself
        np.put_along_axis(rows, i[..., None], 1.0, axis=-1)
        return self.array_type(rows, device=self)

    def empty(self, shape, dtype="float32") -> NDArray:
        """An uninitialised compact array."""
        self._check()
        return self.array_type.make(layout.as_shape(shape, "empty"), device=self, dtype=dtype)

    def full(self, shape, fill_value, dtype="float32") -> NDArray:
        """A compact array with every element `fill_value`."""
        arr = self.empty(shape, dtype)
        arr.fill(fill_value)
        return arr

    def zeros(self, *shape, dtype="float32") -> NDArray:
        return self.full(_shape_args(shape), 0.0, dtype)

    def ones(self, *shape, dtype="float32") -> NDArray:
        return self.full(_shape_args(shape), 1.0, dtype)


def _shape_args(shape: tuple) -> tuple:
    """`f(2, 3)` and `f((2, 3))` both mean shape (2, 3)."""
    return shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


_CPU = BackendDevice("cpu", ndarray_backend_cpu, _CPU_MISSING)
_CPU_NUMPY = BackendDevice("cpu_numpy", ndarray_backend_numpy)
_CUDA_MOD, _CUDA_MISSING = ndarray_backend_cuda.gpu()
_CUDA = BackendDevice(
    "cuda", _CUDA_MOD,
    f"cuda() is not available: {_CUDA_MISSING}. ndl.cuda_sim() runs the same CUDA kernels on the CPU; or use cpu().",
)
_CUDA_SIM = BackendDevice(
    "cuda_sim", ndarray_backend_cuda.simulator(), "cuda_sim() is not available: the CUDA simulator was not built"
)


def cpu() -> BackendDevice:
    """The C++ CPU device."""
    return _CPU


def cpu_numpy() -> BackendDevice:
    """The pure-numpy device (the course's reference backend)."""
    return _CPU_NUMPY


def cuda() -> BackendDevice:
    """The CUDA device (a GPU through CuPy); `enabled()` is False without one."""
    return _CUDA


def cuda_sim() -> BackendDevice:
    """The CUDA simulator: cuda()'s kernels compiled for the CPU, every thread a fiber with real barriers."""
    return _CUDA_SIM


def default_device() -> BackendDevice:
    """Where arrays go when no device is named: cpu() when the C++ backend is built, else cpu_numpy();
    NEEDLE_DEVICE=cuda_sim (or cpu, cpu_numpy, cuda) chooses another."""
    return _DEFAULT


_FACTORIES = {"cpu": cpu, "cuda": cuda, "cuda_sim": cuda_sim, "cpu_numpy": cpu_numpy}


def _default_from_env() -> BackendDevice:
    name = os.environ.get("NEEDLE_DEVICE", "").strip().removesuffix("()")
    if not name:
        return _CPU if _CPU.mod is not None else _CPU_NUMPY
    if name not in _FACTORIES:
        raise RuntimeError(f"NEEDLE_DEVICE={name!r} is not a device; use one of {', '.join(_FACTORIES)}")
    device = _FACTORIES[name]()
    device._check()
    return device


_DEFAULT = _default_from_env()


def all_devices() -> list[BackendDevice]:
    """Every device the course knows, enabled or not (tests skip the disabled ones)."""
    return [cpu(), cuda(), cuda_sim(), cpu_numpy()]


def check_device(device, op: str) -> BackendDevice:
    """`device` itself when it is an available BackendDevice; a TypeError or RuntimeError naming `op` otherwise."""
    if not isinstance(device, BackendDevice):
        raise TypeError(f"{op}: expected a device such as cpu() or cpu_numpy(), got {device!r}")
    device._check()
    return device


def kernel(device: BackendDevice, name: str):
    """The device's kernel `name`, or a clear error when a (learner's) device module lacks it."""
    found = getattr(device.mod, name, None)
    if found is None:
        getattr(device, name)  # raises the device's own message
    return found
