"""Hypothesis strategies for NDArray tests: random shapes and random strided views, each paired with
the numpy array that the same view operations give."""
from __future__ import annotations

import os

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

import needle.backend_ndarray as nd

# modest by default (2-core CI); NDARRAY_EXAMPLES=500 for a deeper search
EXAMPLES = settings(max_examples=int(os.environ.get("NDARRAY_EXAMPLES", "40")), deadline=None)
DTYPES = ("float32", "float64")
TOL = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-12, atol=1e-12)}


def shapes(min_dims: int = 0, max_dims: int = 6, max_side: int = 4):
    """Shapes of 0 to 6 dimensions, small enough for fast tests (sides 1..max_side)."""
    return st.lists(st.integers(1, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


def random_values(seed: int, shape, dtype: str) -> np.ndarray:
    """Reproducible normal values of `shape` (hypothesis chooses the seed)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@st.composite
def arrays(draw, device, shape=None, dtype=None):
    """A compact NDArray on `device` and the numpy array with its values."""
    shape = draw(shapes()) if shape is None else shape
    dtype = draw(st.sampled_from(DTYPES)) if dtype is None else dtype
    x = random_values(draw(st.integers(0, 2**31)), shape, dtype)
    return nd.array(x, device=device, dtype=dtype), x


@st.composite
def index_for(draw, shape, allow_int: bool = True):
    """A course index (ints and slices, any sign of start/stop/step) for `shape`, and numpy's keep-dims twin."""
    ours, theirs = [], []
    for n in shape:
        if allow_int and n and draw(st.booleans()) and draw(st.booleans()):
            i = draw(st.integers(-n, n - 1))
            ours.append(i)
            theirs.append(slice(i % n, i % n + 1))
            continue
        bound = st.one_of(st.none(), st.integers(-n - 1, n + 1))
        sl = slice(draw(bound), draw(bound), draw(st.sampled_from([None, 1, 2, 3, -1, -2])))
        ours.append(sl)
        theirs.append(sl)
    return tuple(ours), tuple(theirs)


@st.composite
def views(draw, device, writable: bool = False, min_size: int = 0):
    """(base NDArray, view NDArray, numpy view): a compact base put through 0-3 random view steps
    (permute, slice with steps and negative starts, int index, broadcast); `writable` leaves out
    broadcasts so the view has no repeated elements."""
    base, x = draw(arrays(device))
    v, y = base, x
    kinds = ["permute", "slice"] + ([] if writable else ["broadcast"])
    for kind in draw(st.lists(st.sampled_from(kinds), max_size=3)):
        if kind == "permute":
            axes = tuple(draw(st.permutations(range(v.ndim))))
            v, y = v.permute(axes), np.transpose(y, axes)
        elif kind == "slice":
            ours, theirs = draw(index_for(v.shape))
            v, y = v[ours], y[theirs]
        else:
            extra = draw(st.lists(st.integers(1, 3), max_size=2))
            shape = tuple(extra) + tuple(draw(st.integers(1, 3)) if n == 1 else n for n in v.shape)
            v, y = v.broadcast_to(shape), np.broadcast_to(y, shape)
    if min_size and y.size < min_size:
        v, y = base, x
    return base, v, y


def course_device(counts: dict) -> nd.BackendDevice:
    """A learner's course-style device: the numpy kernels under the course's names only (no
    `matmul_strided`, no `reduce_*_axis`, no `ewise_power`); `counts` tallies matmul kernel calls."""
    import types

    mod = types.ModuleType("course_backend")
    src = nd.ndarray_backend_numpy
    names = ["Array", "to_numpy", "from_numpy", "fill", "compact", "ewise_setitem", "scalar_setitem",
             "ewise_log", "ewise_exp", "ewise_tanh", "reduce_sum", "reduce_max", "scalar_power"]
    names += [f"{k}_{op}" for k in ("ewise", "scalar") for op in ("add", "mul", "div", "maximum", "eq", "ge")]
    for name in names:
        setattr(mod, name, getattr(src, name))
    mod.__tile_size__ = src.__tile_size__

    def counted(name):
        def kernel(*args):
            counts[name] = counts.get(name, 0) + 1
            return getattr(src, name)(*args)

        return kernel

    mod.matmul, mod.matmul_tiled = counted("matmul"), counted("matmul_tiled")
    return nd.BackendDevice("course", mod)
