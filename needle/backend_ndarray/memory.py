"""Memory accounting per device: the bytes held by live NDArray buffers now, and the most held at once.

Every buffer NDArray allocates is recorded with its size; a weak reference's callback subtracts it when
the buffer is freed (the last view over it gone), so `current` is exact for NDArray storage. Views share
their buffer and cost nothing. Scratch space a kernel allocates and frees inside one call is not counted.
A device module with its own counters (`memory_stats()`, as the C++ CPU backend has: a buffer's constructor
and destructor keep them) is asked instead, which saves every allocation a weak reference.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from .devices import default_device

__all__ = ["MemoryStats", "memory_stats", "reset_peak_memory_stats", "track"]

_ITEMSIZE = {"float32": 4, "float64": 8, "int32": 4, "int64": 8}


@dataclass(frozen=True)
class MemoryStats:
    """A snapshot for one device: `current` bytes held by live arrays and the `peak` since the last reset."""

    device: str
    current: int
    peak: int
    live_buffers: int


class _Counter:
    """Running byte counts of one device; `sizes` maps each live buffer's weak reference to its bytes."""

    __slots__ = ("current", "peak", "sizes", "free")

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0
        self.sizes: dict = {}
        self.free = self._free  # one bound method, shared by every weak reference as its callback

    def _free(self, ref) -> None:
        self.current -= self.sizes.pop(ref)


_COUNTERS: dict[str, _Counter] = {}


def _counter(name: str) -> _Counter:
    counter = _COUNTERS.get(name)
    if counter is None:
        counter = _COUNTERS[name] = _Counter()
    return counter


def track(device_name: str, handle, size: int, dtype: str) -> None:
    """Record a freshly allocated buffer `handle` of `size` elements on `device_name` until it is freed."""
    nbytes = size * (_ITEMSIZE.get(dtype) or np.dtype(dtype).itemsize)
    counter = _COUNTERS.get(device_name) or _counter(device_name)
    counter.current += nbytes
    if counter.current > counter.peak:
        counter.peak = counter.current
    counter.sizes[weakref.ref(handle, counter.free)] = nbytes


def _device(device, caller: str):
    if device is None:
        device = default_device()
    if not isinstance(getattr(device, "name", None), str):
        raise TypeError(f"{caller}: expected a needle device such as ndl.cpu(), got {device!r}")
    return device


def memory_stats(device=None) -> MemoryStats:
    """Bytes of NDArray buffers alive on `device` (default: the default device) and the peak since the last
    `reset_peak_memory_stats(device)`."""
    device = _device(device, "memory_stats")
    if getattr(device, "counts_memory", False):  # the C++ CPU backend counts its own
        return MemoryStats(device.name, *device.mod.memory_stats())
    counter = _counter(device.name)
    return MemoryStats(device.name, counter.current, counter.peak, len(counter.sizes))


def reset_peak_memory_stats(device=None) -> None:
    """Start a new peak measurement on `device`: the peak becomes the bytes alive now."""
    device = _device(device, "reset_peak_memory_stats")
    if getattr(device, "counts_memory", False):
        device.mod.reset_peak_memory_stats()
        return
    counter = _counter(device.name)
    counter.peak = counter.current
