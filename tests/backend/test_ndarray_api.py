"""NDArray devices, dtypes, numpy interop, clear errors on bad input, and NEEDLE_BACKEND selection."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ndarray_cases import EXAMPLES, arrays

import needle
import needle.backend_ndarray as nd

# ---- devices ----


def test_devices_course_contract():
    assert [str(d) for d in nd.all_devices()] == ["cpu()", "cuda()", "cuda_sim()", "cpu_numpy()"]
    assert nd.default_device() == nd.cpu() and nd.cpu().enabled() and nd.cpu_numpy().enabled()
    assert nd.cpu() == nd.cpu() and nd.cpu() != nd.cpu_numpy() and nd.cpu() != "cpu"
    assert len({nd.cpu(), nd.cpu(), nd.cpu_numpy()}) == 2
    assert nd.cpu().__tile_size__ == 8 and callable(nd.cpu().matmul_tiled)
    assert needle.cpu is nd.cpu and needle.NDArray is nd.NDArray and needle.Device is nd.BackendDevice
    assert needle.array_api is nd and needle.default_device() == nd.cpu()


# The names the course's code and notebooks 05/06 reach on the ndarray module (`nd.array`, `nd.empty`, ...), and
# through `needle.backend_ndarray`, which re-exports it (needle_course_api.md §3.2-3.3).
COURSE_MODULE_NAMES = ["array", "empty", "full", "broadcast_to", "reshape", "maximum", "log", "exp", "tanh", "sum",
                       "max", "flip", "matmul", "stack", "split", "cpu", "cuda", "cpu_numpy", "default_device",
                       "all_devices", "NDArray", "BackendDevice", "prod"]


@pytest.mark.parametrize("name", COURSE_MODULE_NAMES)
def test_the_course_names_stay_on_the_ndarray_module(name):
    import needle.backend_ndarray.ndarray as ndarray_module

    on_module = getattr(ndarray_module, name)
    assert name in ndarray_module.__all__ and getattr(nd, name) is on_module


def test_the_ndarray_module_functions_run():
    import needle.backend_ndarray.ndarray as m

    a = m.array(np.arange(6.0).reshape(2, 3), device=m.default_device())
    assert m.prod((2, 3)) == 6 and m.empty((2, 3)).shape == (2, 3) and float(m.full((1,), 2.5).numpy()[0]) == 2.5
    np.testing.assert_allclose(m.sum(m.exp(m.log(m.maximum(a, 1.0))), axis=1).numpy(),
                               np.maximum(np.arange(6.0).reshape(2, 3), 1).sum(axis=1))
    parts = m.split(m.stack([a, a], axis=0), axis=0)
    assert len(parts) == 2 and parts[0].shape == (2, 3)
    np.testing.assert_allclose(m.matmul(m.reshape(a, (3, 2)), m.broadcast_to(m.array([[1.0], [1.0]]), (2, 1))).numpy(),
                               np.arange(6.0).reshape(3, 2).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(m.flip(m.tanh(a), (1,)).numpy(), np.tanh(np.arange(6.0).reshape(2, 3))[:, ::-1],
                               rtol=1e-6)
    assert m.max(a).numpy() == 5.0


def test_devices_survive_copy_and_pickle():
    import copy
    import pickle

    for d in nd.all_devices():
        assert copy.deepcopy(d) is d and copy.copy(d) is d and pickle.loads(pickle.dumps(d)) is d
    with pytest.raises(TypeError, match=r"course\(\) cannot be pickled"):
        pickle.dumps(nd.BackendDevice("course", nd.ndarray_backend_numpy))


def test_disabled_cuda_raises_a_clear_message():
    if nd.cuda().enabled():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match=r"cuda\(\) is not available"):
        nd.array([1.0], device=nd.cuda())
    with pytest.raises(RuntimeError, match=r"cuda\(\) is not available"):
        nd.cuda().randn(2)
    with pytest.raises(RuntimeError, match=r"cuda\(\) is not available"):
        nd.array([1.0]).to(nd.cuda())


def test_random_draws_follow_numpys_global_rng(device):
    np.random.seed(3)
    want_n, want_u = np.random.randn(2, 3).astype("float32"), np.random.rand(4).astype("float32")
    np.random.seed(3)
    a, b = device.randn(2, 3), device.rand(4)
    assert a.device == device and a.dtype == "float32"
    np.testing.assert_array_equal(a.numpy(), want_n)
    np.testing.assert_array_equal(b.numpy(), want_u)
    np.random.seed(3)
    got = device.randn(2, 3, dtype="float64")
    np.random.seed(3)
    np.testing.assert_array_equal(got.numpy(), np.random.randn(2, 3))


def test_one_hot_full_empty(device):
    np.testing.assert_array_equal(device.one_hot(4, np.array([3, 0, 3])).numpy(), np.eye(4)[[3, 0, 3]])
    np.testing.assert_array_equal(device.one_hot(3, nd.array([1.0, 2.0], device=device)).numpy(), np.eye(3)[[1, 2]])
    with pytest.raises(IndexError, match=r"one_hot.*\[0, 4\)"):
        device.one_hot(4, [4])
    f = device.full((2, 2), 3.0, dtype="float64")
    assert f.dtype == "float64" and f.device == device and f.is_compact()
    np.testing.assert_array_equal(f.numpy(), np.full((2, 2), 3.0))
    assert device.empty((3, 0)).shape == (3, 0)
    np.testing.assert_array_equal(device.zeros(2, 3).numpy(), np.zeros((2, 3)))
    np.testing.assert_array_equal(device.ones((2,)).numpy(), np.ones(2))


@EXAMPLES
@given(data=st.data())
def test_to_moves_between_devices_and_keeps_dtype(device, data):
    a, x = data.draw(arrays(device))
    for target in (nd.cpu(), nd.cpu_numpy()):
        b = a.to(target)
        assert b.device == target and b.dtype == a.dtype
        np.testing.assert_array_equal(b.numpy(), x)
    assert a.to(device) is a
    c = nd.NDArray(a)  # the constructor always copies
    assert c._handle.ptr() != a._handle.ptr() and c.dtype == a.dtype
    np.testing.assert_array_equal(c.numpy(), x)


# ---- dtypes ----


@pytest.mark.parametrize(
    "data,dtype,want",
    [
        (np.ones(2), None, "float64"),  # numpy float64 data keeps its precision
        (np.float64(2.5), None, "float64"),
        (np.ones(2, dtype="float32"), None, "float32"),
        ([1.5, 2.5], None, "float32"),  # Python numbers: the course's float32
        (np.arange(3), None, "float32"),
        (np.array([True, False]), "bool", "float32"),
        (np.arange(3), "int64", "float32"),
        (np.ones(2), "float32", "float32"),
        (np.ones(2, dtype="float32"), np.float64, "float64"),
        (np.ones(2), np.dtype("float64"), "float64"),
    ],
)
def test_dtype_rules(device, data, dtype, want):
    a = nd.NDArray(data, device=device, dtype=dtype)
    assert a.dtype == want and a.numpy().dtype == np.dtype(want) and a.shape == np.shape(data)
    np.testing.assert_array_equal(a.numpy(), np.asarray(data).astype(want))
    assert nd.array(data, device=device).dtype == "float32"  # array()'s default is the course's float32
    assert nd.array(data, dtype=None, device=device).dtype == want if dtype is None else True


def test_bool_dtype_stores_zero_one_and_unknown_dtypes_raise(device):
    np.testing.assert_array_equal(nd.array([True, False, True], dtype="bool", device=device).numpy(), [1.0, 0.0, 1.0])
    for bad in ("complex64", "float128x", "U3", object):
        with pytest.raises(TypeError, match="dtype"):
            nd.array([1.0], dtype=bad, device=device)
    with pytest.raises(TypeError, match="dtype"):
        nd.array(np.ones(2)).astype("int128")
    with pytest.raises(TypeError, match="numbers only"):
        nd.NDArray(np.array(["a", "b"]), device=device)


@EXAMPLES
@given(data=st.data())
def test_astype_roundtrip(device, data):
    a, x = data.draw(arrays(device))
    other = "float64" if a.dtype == "float32" else "float32"
    b = a.astype(other)
    assert b.dtype == other and a.astype(a.dtype) is a
    np.testing.assert_array_equal(b.numpy(), x.astype(other))


# ---- numpy interop ----


def test_numpy_interop(device):
    x = np.arange(6.0).reshape(2, 3)
    a = nd.array(x, device=device)
    np.testing.assert_array_equal(np.asarray(a), x)
    np.testing.assert_allclose(a, x)
    assert np.asarray(a, dtype="float64").dtype == np.float64
    for r in (np.float32(2) * a, a * np.float64(2), np.float32(1) + a, np.float32(12) / (a + 1.0), np.float32(2) - a):
        assert isinstance(r, nd.NDArray)
    np.testing.assert_array_equal((np.float32(2) - a).numpy(), 2 - x)
    np.testing.assert_allclose((np.float32(12) / (a + 1.0)).numpy(), 12 / (x + 1), rtol=1e-6)
    np.testing.assert_array_equal((x.T @ a).numpy(), (x.T @ x).astype("float32"))
    assert isinstance(x + a, nd.NDArray)
    with pytest.raises(ValueError, match="always copies"):
        np.array(a, copy=False)
    np.testing.assert_array_equal((x > a).numpy(), np.zeros((2, 3)))
    np.testing.assert_array_equal((np.float32(2) >= a).numpy(), (2 >= x).astype("float32"))
    np.testing.assert_array_equal((np.float32(2) < a).numpy(), (2 < x).astype("float32"))
    # numpy functions and non-operator ufuncs work on the values and return numpy results
    assert np.sum(a) == 15.0 and np.max(a) == 5.0 and np.mean(a) == 2.5
    np.testing.assert_array_equal(np.sum(a, axis=1), [3.0, 12.0])
    for r in (np.abs(-a), np.exp(a), np.maximum(a, 2.0), np.stack([a, a]), np.isnan(a)):
        assert isinstance(r, np.ndarray)
    np.testing.assert_allclose(np.exp(a), np.exp(x), rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate([a, x]), np.concatenate([x, x]))
    for write in (lambda: np.add(x, 1.0, out=a), lambda: np.sum(x, axis=0, out=a[0]), lambda: np.copyto(a, x),
                  lambda: np.fill_diagonal(a, 0.0)):
        with pytest.raises(TypeError, match="cannot write into an NDArray"):
            write()
    np.testing.assert_array_equal(a.numpy(), x)
    assert float(a[1, 2]) == 5.0 and bool(a[0, 1]) and not bool(a[0, 0])
    with pytest.raises(ValueError, match="ambiguous"):
        bool(a)
    assert len(a) == 2 and str(a) == str(x.astype("float32")) and str(a.device) in repr(a)


# ---- errors: each names the operation and the shapes, never a crash ----


def _a(device, shape=(2, 3)):
    return nd.array(np.arange(float(np.prod(shape))).reshape(shape), device=device)


ERRORS = [
    ("add mismatched shapes", lambda a: a + _a(a.device, (3, 2)), ValueError, r"add: shapes \(2, 3\) and \(3, 2\)"),
    ("mul mismatched shapes", lambda a: a * _a(a.device, (2, 1)), ValueError, r"mul: shapes \(2, 3\) and \(2, 1\)"),
    ("compare mismatched", lambda a: a >= _a(a.device, (3,)), ValueError, r"ge: shapes \(2, 3\) and \(3,\)"),
    ("reshape size", lambda a: a.reshape((4, 2)), ValueError, r"reshape.*\(2, 3\).*\(4, 2\)"),
    ("reshape two -1", lambda a: a.reshape((-1, -1)), ValueError, r"reshape: invalid target shape"),
    ("reshape type", lambda a: a.reshape("six"), TypeError, r"reshape: shape must be a tuple of ints"),
    ("permute short", lambda a: a.permute((0,)), ValueError, r"permute: \(0,\).*\(2, 3\)"),
    ("permute repeat", lambda a: a.permute((1, 1)), ValueError, r"permute: \(1, 1\)"),
    ("permute range", lambda a: a.permute((0, 5)), ValueError, r"permute: \(0, 5\)"),
    ("broadcast", lambda a: a.broadcast_to((2, 4)), ValueError, r"broadcast_to.*\(2, 3\) to \(2, 4\)"),
    ("broadcast fewer", lambda a: a.broadcast_to((3,)), ValueError, r"broadcast_to.*\(2, 3\) to \(3,\)"),
    ("index range", lambda a: a[2, 0], IndexError, r"index 2 is out of range for axis 0 of shape \(2, 3\)"),
    ("index negative", lambda a: a[0, -4], IndexError, r"index -4 is out of range for axis 1"),
    ("too many indices", lambda a: a[0, 0, 0], IndexError, r"3 indices for an array of shape \(2, 3\)"),
    ("bad index type", lambda a: a["x"], IndexError, r"unsupported index 'x'"),
    ("None index", lambda a: a[None], IndexError, r"unsupported index None"),
    ("two ellipses", lambda a: a[..., ...], IndexError, r"one Ellipsis"),
    ("step zero", lambda a: a[::0], ValueError, r"step cannot be zero"),
    ("setitem shape", lambda a: a.__setitem__((0,), _a(a.device, (2,))), ValueError, r"setitem.*\(2,\).*\(1, 3\)"),
    ("setitem range", lambda a: a.__setitem__((5,), 1.0), IndexError, r"index 5 is out of range"),
    ("sum axis", lambda a: a.sum(axis=2), ValueError, r"sum: axis 2 is out of range"),
    ("max repeated axis", lambda a: a.max(axis=(1, -1)), ValueError, r"max: repeated axis"),
    ("flip axis", lambda a: a.flip((3,)), ValueError, r"flip: axis 3"),
    ("pad pairs", lambda a: a.pad(((1, 1),)), ValueError, r"pad: .*\(2, 3\)"),
    ("pad negative", lambda a: a.pad(((0, 0), (-1, 0))), ValueError, r"pad: need one non-negative"),
    ("as_strided bounds", lambda a: a.as_strided((3, 3), (3, 1)), ValueError, r"as_strided.*outside the buffer of 6"),
    ("as_strided negative", lambda a: a.as_strided((2,), (-1,)), ValueError, r"as_strided.*outside"),
    ("as_strided rank", lambda a: a.as_strided((2,), (1, 1)), ValueError, r"as_strided.*differ in length"),
    ("empty negative", lambda a: a.device.empty((2, -1)), ValueError, r"empty: negative dimension"),
    ("unknown device", lambda a: a.to("gpu"), TypeError, r"NDArray.to: expected a device"),
    ("unknown device ctor", lambda a: nd.array([1.0], device="cpu"), TypeError, r"expected a device"),
    ("different devices", lambda a: a + a.to(nd.cpu_numpy() if a.device == nd.cpu() else nd.cpu()), ValueError,
     r"add: operands on different devices"),
    ("stack shapes", lambda a: nd.stack([a, _a(a.device, (3, 2))]), ValueError, r"stack: all arrays must have the same"),
    ("len 0-d", lambda a: len(a.sum()), TypeError, r"len\(\) of a 0-d NDArray"),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c[0] for c in ERRORS])
def test_bad_input_raises_a_clear_error(device, case):
    _, fn, exc, pattern = case
    with pytest.raises(exc, match=pattern):
        fn(_a(device))


def test_kernels_reject_bad_layouts_without_crashing(device):
    """Views built with `make` bypass the Python checks: the device kernels must still refuse them."""
    a = _a(device)
    for shape, strides, offset in [((4, 4), (4, 1), 0), ((2,), (1,), 5), ((3,), (-1,), 1), ((2, 2), (1,), 0)]:
        bad = nd.NDArray.make(shape, strides, device, a._handle, offset)
        with pytest.raises((ValueError, IndexError)):
            bad.compact()
        with pytest.raises((ValueError, IndexError)):
            bad.numpy()
        with pytest.raises((ValueError, IndexError)):
            device.ewise_setitem(a._handle, a._handle, shape, strides, offset)
    other = device.Array(5)
    with pytest.raises(ValueError):
        device.ewise_add(a._handle, other, other)
    with pytest.raises(ValueError):
        device.reduce_sum(a._handle, other, 0)
    with pytest.raises(ValueError):
        device.matmul(a._handle, a._handle, other, 3, 3, 3)


@st.composite
def raw_layouts(draw):
    """A buffer size and an arbitrary (often out-of-bounds) strided layout over it."""
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=ndim, max_size=ndim)))
    strides = tuple(draw(st.lists(st.integers(-6, 6), min_size=ndim, max_size=ndim)))
    return draw(st.integers(0, 40)), shape, strides, draw(st.integers(-3, 45))


def _inside(size, shape, strides, offset) -> bool:
    if 0 in shape:
        return True
    lo = offset + sum((n - 1) * s for n, s in zip(shape, strides) if s < 0)
    hi = offset + sum((n - 1) * s for n, s in zip(shape, strides) if s > 0)
    return 0 <= lo and hi < size



@EXAMPLES
@given(layout=raw_layouts(), dtype=st.sampled_from(["float32", "float64"]))
def test_kernels_fuzzed_layouts_never_crash(device, layout, dtype):
    """compact / to_numpy / setitem kernels on random layouts: the numpy answer when the layout lies
    inside the buffer, a ValueError otherwise; never a crash."""
    size, shape, strides, offset = layout
    x = np.arange(size, dtype=dtype)
    buf = device.Array(size, dtype)
    device.from_numpy(x, buf)
    n = int(np.prod(shape))
    out = device.Array(n, dtype)
    if not _inside(size, shape, strides, offset):
        for call in (lambda: device.compact(buf, out, shape, strides, offset),
                     lambda: device.to_numpy(buf, shape, strides, offset),
                     lambda: device.ewise_setitem(out, buf, shape, strides, offset),
                     lambda: device.scalar_setitem(n, 1.0, buf, shape, strides, offset)):
            with pytest.raises(ValueError):
                call()
        return
    idx = np.zeros(shape, dtype=np.int64) + offset
    for axis, s in enumerate(strides):
        idx = idx + s * np.arange(shape[axis]).reshape((-1,) + (1,) * (len(shape) - axis - 1))
    want = x[idx] if n else np.zeros(shape, dtype)
    device.compact(buf, out, shape, strides, offset)
    np.testing.assert_array_equal(device.to_numpy(out, (n,), (1,), 0), want.reshape(-1))
    np.testing.assert_array_equal(device.to_numpy(buf, shape, strides, offset), want)
    device.scalar_setitem(n, -1.0, buf, shape, strides, offset)
    expected = x.copy()
    expected[idx] = -1.0
    np.testing.assert_array_equal(device.to_numpy(buf, (size,), (1,), 0), expected)


# ---- NEEDLE_BACKEND ----

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _import_needle(backend: str) -> subprocess.CompletedProcess:
    code = "import needle; print(needle.BACKEND, needle.array_api.__name__, needle.NDArray.__name__)"
    env = dict(os.environ, NEEDLE_BACKEND=backend)
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_needle_backend_nd_and_invalid():
    ok = _import_needle("nd")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["nd", "needle.backend_ndarray", "NDArray"]
    bad = _import_needle("tf")
    assert bad.returncode != 0 and "RuntimeError" in bad.stderr and "NEEDLE_BACKEND='tf'" in bad.stderr


def test_needle_backend_np():
    ok = _import_needle("np")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["np", "numpy", "ndarray"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_view_shares_host_memory_and_outlives_its_array(device, dtype):
    a = nd.array(np.arange(6).reshape(2, 3), device=device, dtype=dtype)
    view = a.numpy_view()
    view[0, 0] = 42.0  # writes go through to the device buffer
    assert a.numpy()[0, 0] == 42.0 and view.dtype == dtype
    with pytest.raises(ValueError, match="not compact"):  # a view of a copy would lose its writes
        a.permute((1, 0)).numpy_view()
    strided = a.permute((1, 0)).compact().numpy_view()
    del a
    np.testing.assert_array_equal(strided, [[42, 3], [1, 4], [2, 5]])
    np.testing.assert_array_equal(view, [[42, 1, 2], [3, 4, 5]])  # the buffer is still alive
