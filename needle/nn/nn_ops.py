"""Ops the nn modules need beyond the course's set: an embedding gather and its scatter-add.

Embedding(ids) gives the numbers of one_hot(ids) @ weight but copies rows instead of building a
(len(ids), num_embeddings) one-hot matrix; its gradient scatter-adds rows back. Each op is the
other's gradient, so gradients of gradients work too."""
from __future__ import annotations

import ctypes

import numpy as np

from needle.autograd import Tensor, TensorOp
from needle.backend_selection import array_api

__all__ = ["embedding", "EmbeddingGather", "EmbeddingScatter"]

_CTYPES = {"float32": ctypes.c_float, "float64": ctypes.c_double}


def host_view(a) -> np.ndarray:
    """A numpy view of an array's memory without copying it when it lives on a CPU device
    (cpu() exposes its buffer address, cpu_numpy() a numpy array); a copy otherwise."""
    if isinstance(a, np.ndarray):
        return a
    a = a.compact()
    handle = getattr(a, "_handle", None)
    if getattr(a.device, "name", "") in ("cpu", "cpu_numpy") and handle is not None:
        buf = getattr(handle, "array", None)
        if buf is None:
            buf = np.ctypeslib.as_array((_CTYPES[a.dtype] * handle.size).from_address(handle.ptr()))
        return buf.reshape(a.shape)
    return a.numpy()


def _like(values: np.ndarray, ref):
    """values as an array of ref's kind (NDArray on ref's device, or numpy)."""
    if isinstance(ref, np.ndarray):
        return values
    return array_api.array(values, dtype=ref.dtype, device=ref.device)


def _check_ids(ids: np.ndarray, num: int, op: str) -> np.ndarray:
    flat = np.asarray(ids).astype(np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= num):
        raise IndexError(f"{op}: ids must lie in [0, {num}), got values in [{flat.min()}, {flat.max()}]")
    if not np.array_equal(flat, ids):
        raise ValueError(f"{op}: ids must be whole numbers")
    return flat


class EmbeddingGather(TensorOp):
    """weight (num, dim) -> weight[ids] with shape ids.shape + (dim,)."""

    def __init__(self, ids: np.ndarray):
        self.ids = ids

    def compute(self, weight):
        rows = host_view(weight)[self.ids.reshape(-1)]
        return _like(rows.reshape(*self.ids.shape, weight.shape[1]), weight)

    def gradient(self, out_grad: Tensor, node: Tensor):
        return EmbeddingScatter(self.ids, node.inputs[0].shape[0])(out_grad)


class EmbeddingScatter(TensorOp):
    """grad (ids.shape + (dim,)) -> (num, dim) with each row added at its id (the gather's adjoint)."""

    def __init__(self, ids: np.ndarray, num: int):
        self.ids = ids
        self.num = num

    def compute(self, grad):
        g = host_view(grad).reshape(-1, grad.shape[-1])
        out = np.zeros((self.num, g.shape[1]), dtype=g.dtype)
        np.add.at(out, self.ids.reshape(-1), g)
        return _like(out, grad)

    def gradient(self, out_grad: Tensor, node: Tensor):
        return EmbeddingGather(self.ids)(out_grad)


def embedding(weight: Tensor, ids) -> Tensor:
    """Rows of weight (num, dim) at integer ids of any shape: ids.shape + (dim,)."""
    if len(weight.shape) != 2:
        raise ValueError(f"embedding: weight must be 2-D (num, dim), got shape {weight.shape}")
    return EmbeddingGather(_check_ids(np.asarray(ids), weight.shape[0], "embedding"))(weight)
