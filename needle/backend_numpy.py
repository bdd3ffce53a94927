"""The course's numpy device for NEEDLE_BACKEND=np: arrays are plain numpy arrays on the CPU."""
from __future__ import annotations

import numpy

from .labels import integer_labels


class Device:
    """Indicates the device supporting an NDArray."""


class CPUDevice(Device):
    """Represents data that sits in CPU memory (as numpy arrays)."""

    def __repr__(self) -> str:
        return "needle.cpu()"

    def __hash__(self) -> int:
        return self.__repr__().__hash__()

    def __eq__(self, other) -> bool:
        return isinstance(other, CPUDevice)

    def enabled(self) -> bool:
        return True

    def zeros(self, *shape, dtype="float32") -> numpy.ndarray:
        return numpy.zeros(shape, dtype=dtype)

    def ones(self, *shape, dtype="float32") -> numpy.ndarray:
        return numpy.ones(shape, dtype=dtype)

    def randn(self, *shape, dtype="float32") -> numpy.ndarray:
        """Standard normal samples from numpy's global RNG (the same draws as the NDArray devices)."""
        return numpy.random.randn(*shape).astype(dtype)

    def rand(self, *shape, dtype="float32") -> numpy.ndarray:
        """Uniform [0, 1) samples from numpy's global RNG (the same draws as the NDArray devices)."""
        return numpy.random.rand(*shape).astype(dtype)

    def one_hot(self, n: int, i, dtype="float32") -> numpy.ndarray:
        return numpy.eye(n, dtype=dtype)[integer_labels(i, n, "one_hot")]

    def empty(self, shape, dtype="float32") -> numpy.ndarray:
        return numpy.empty(shape, dtype=dtype)

    def full(self, shape, fill_value, dtype="float32") -> numpy.ndarray:
        return numpy.full(shape, fill_value, dtype=dtype)


def cpu() -> CPUDevice:
    """Return cpu device."""
    return CPUDevice()


def default_device() -> CPUDevice:
    return cpu()


def all_devices() -> list[CPUDevice]:
    """Return a list of all available devices."""
    return [cpu()]
