"""Chooses the array backend from NEEDLE_BACKEND: `nd` (NDArray, default) or `np` (plain numpy)."""
import os

BACKEND = os.environ.get("NEEDLE_BACKEND", "nd")

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
elif BACKEND == "np":
    import numpy as array_api  # noqa: F401

    from .backend_numpy import Device, all_devices, cpu, default_device  # noqa: F401

    NDArray = array_api.ndarray
else:
    raise RuntimeError(f"NEEDLE_BACKEND={BACKEND!r} is not a backend; use 'nd' (NDArray) or 'np' (numpy)")
