"""Chooses the array backend from NEEDLE_BACKEND: `nd` (NDArray, default) or `np` (plain numpy).

The one place that knows which array library the raw arrays come from and what it can do; every other module
asks here (the ops' spelling differences live in `ops/array_compat.py`, chosen from `BACKEND`).
"""
import os

import numpy

BACKEND = os.environ.get("NEEDLE_BACKEND", "nd")
NUMPY = BACKEND == "np"  # raw arrays are numpy.ndarray: no device of their own, any dtype

if BACKEND == "nd":
    from . import backend_ndarray as array_api
    from .backend_ndarray import (  # noqa: F401
        BackendDevice as Device,
        NDArray,
        all_devices,
        cpu,
        cpu_numpy,
        cuda,
        cuda_sim,
        default_device,
    )
elif NUMPY:
    import numpy as array_api  # noqa: F401

    from .backend_numpy import Device, all_devices, cpu, default_device  # noqa: F401

    NDArray = array_api.ndarray
else:
    raise RuntimeError(f"NEEDLE_BACKEND={BACKEND!r} is not a backend; use 'nd' (NDArray) or 'np' (numpy)")


def device_of(data) -> "Device":
    """The device a raw array lives on (numpy arrays: the numpy cpu device)."""
    return cpu() if NUMPY else data.device


def from_numpy(array, device=None, dtype="float32"):
    """A raw backend array holding a copy of numpy `array` (on `device`; numpy arrays have none)."""
    if NUMPY:
        return numpy.array(array, dtype=dtype)
    return array_api.array(array, device=device, dtype=dtype)


def to_numpy(data) -> numpy.ndarray:
    """A numpy array with the values of raw array `data`."""
    if NUMPY:
        return data if isinstance(data, numpy.ndarray) else numpy.array(data)
    return data.numpy()


def storage_dtype(dtype) -> str:
    """The dtype an array of `dtype` is stored as: numpy keeps any dtype, NDArray keeps bool and ints as float32."""
    if NUMPY:
        return dtype
    return "float64" if numpy.dtype(dtype) == numpy.float64 else "float32"
