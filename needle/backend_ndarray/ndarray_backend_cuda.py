"""The CUDA device modules: the device contract (compact, ewise_add, ..., matmul, adam_step) as launches of
the kernels in kernels/cuda/, with the geometry of `cuda_launch`, on one of two executors:

- `SimExecutor` (`cuda_sim()`): the CUDA simulator built with needle runs the same kernels compiled as C++,
  every thread of a block a fiber, `__syncthreads()` a real barrier. `checked()` turns on its sanitizer.
- `CupyExecutor` (`cuda()`): a GPU through CuPy, the kernels compiled by NVRTC from the same sources.

A kernel is written once over `scalar_t` and built per dtype: `ewise_add` runs ewise_add_f32 or _f64.
"""
from __future__ import annotations

import contextlib
import math
import os
from collections import OrderedDict
from typing import Any, Iterator

import numpy as np

from ..labels import id_error
from . import cuda_launch as geo
from . import cuda_sources, layout

_SUFFIX = {"float32": "_f32", "float64": "_f64"}


class _Constants:
    """Small int64 device arrays (shapes and strides for the strided kernels), kept for reuse."""

    def __init__(self, make, limit: int = 512):
        self._make, self._limit, self._cache = make, limit, OrderedDict()

    def __call__(self, values: tuple[int, ...]):
        arr = self._cache.get(values)
        if arr is None:
            arr = self._cache[values] = self._make(np.array(values, dtype=np.int64))
            if len(self._cache) > self._limit:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(values)
        return arr


class SimExecutor:
    """Runs kernels on the CUDA simulator (host memory, so transfers are copies in RAM)."""

    name = "cuda_sim"

    def __init__(self, module):
        self.mod = module
        self.Array = module.Array
        self.checked_mode = os.environ.get("NEEDLE_CUDA_SIM_CHECKED", "") not in ("", "0")
        self.max_blocks = 2 * (os.cpu_count() or 1)  # a few fibers' worth of blocks per core
        self._kernels = module.builtin_kernels()
        self.constant = _Constants(self._constant)

    def _constant(self, values: np.ndarray):
        arr = self.Array(values.size, "int64")
        np.asarray(arr)[:] = values
        return arr

    def function(self, name: str):
        try:
            return self._kernels[name]
        except KeyError:
            raise AttributeError(f"cuda_sim() has no kernel {name!r}") from None

    def compile(self, source: str) -> dict:
        """{name: kernel} of CUDA source text (a notebook cell), compiled for the simulator, installed nowhere."""
        from .cuda_sim_build import compile_kernels

        return compile_kernels(source)

    def add_source(self, source: str) -> list[str]:
        """Compile CUDA source text (a notebook cell) and make its kernels launchable by name, in place of
        built-ins of the same name; returns their names."""
        kernels = self.compile(source)
        self._kernels.update(kernels)
        return list(kernels)

    def restore_builtins(self) -> None:
        """Forget every kernel added by add_source."""
        self._kernels = self.mod.builtin_kernels()

    def launch(self, fn, geometry: geo.Geometry, args: list) -> None:
        fn(geometry[0], geometry[1], args, checked=self.checked_mode)

    def host(self, a) -> np.ndarray:
        return np.asarray(a)

    def upload(self, values: np.ndarray, out) -> None:
        np.asarray(out)[:] = values

    def download(self, a, shape, strides, offset) -> np.ndarray:
        flat = np.asarray(a)
        item = flat.itemsize
        return np.lib.stride_tricks.as_strided(flat[offset:], shape, tuple(s * item for s in strides)).copy()


class CupyArray:
    """A flat GPU buffer (a 1-D CuPy array) with the device module's Array interface."""

    def __init__(self, size: int, dtype: str = "float32"):
        import cupy

        if size < 0:
            raise ValueError(f"Array: size must be >= 0, got {size}")
        self.array = cupy.empty(int(size), dtype=dtype)

    @property
    def size(self) -> int:
        return self.array.size

    @property
    def dtype(self) -> str:
        return self.array.dtype.name

    def ptr(self) -> int:
        return self.array.data.ptr


# numpy scalar type of each parameter type the kernels use (pointers are buffers)
_SCALARS = {"idx_t": np.int64, "long long": np.int64, "int": np.int32, "unsigned": np.uint32, "float": np.float32,
            "double": np.float64, "bool": np.bool_}


class CupyExecutor:
    """Runs kernels on a GPU: each kernels/cuda source compiled by NVRTC per dtype (CuPy caches the binaries)."""

    name = "cuda"
    Array = CupyArray

    def __init__(self, cupy):
        self.cupy = cupy
        self.checked_mode = False
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        self.max_blocks = 32 * int(props["multiProcessorCount"])
        self._sources = {p.name: p.read_text() for p in sorted(cuda_sources.source_dir().glob("*.cu"))}
        self._modules: dict[tuple[str, str], Any] = {}
        self._signatures: dict[str, tuple[str, str, list]] = {}
        for file, text in self._sources.items():
            for suffix in ("_f32", "_f64"):
                for name, params in cuda_sources.kernel_signatures(text, suffix).items():
                    self._signatures[name] = (file, suffix, params)
        self._functions: dict[str, Any] = {}
        self.constant = _Constants(lambda values: _wrap(cupy.asarray(values)))

    def function(self, name: str):
        fn = self._functions.get(name)
        if fn is None:
            if name not in self._signatures:
                raise AttributeError(f"cuda() has no kernel {name!r}")
            file, suffix, params = self._signatures[name]
            module = self._modules.get((file, suffix))
            if module is None:
                options = ("-std=c++17", f"-I{cuda_sources.source_dir()}") + (("-DNEEDLE_DTYPE_F64",) if suffix == "_f64" else ())
                module = self._modules[(file, suffix)] = self.cupy.RawModule(code=self._sources[file], options=options)
            scalar = np.float64 if suffix == "_f64" else np.float32
            kinds = [None if t.endswith("*") else (scalar if t == "scalar_t" else _SCALARS[t]) for t, _ in params]
            fn = self._functions[name] = (module.get_function(name), kinds)
        return fn

    def compile(self, source: str) -> dict:
        """{name: launchable} of CUDA source text compiled by NVRTC, installed nowhere."""
        from .cuda_sim_build import CudaCompileError

        if not cuda_sources.kernel_names(source, ""):
            raise CudaCompileError('no kernel found: write `extern "C" __global__ void name(...) { ... }`')
        module = self.cupy.RawModule(code=source, options=("-std=c++17", f"-I{cuda_sources.source_dir()}"))
        out = {}
        try:
            for name, params in cuda_sources.kernel_signatures(source, "_f32").items():
                scalar = np.float64 if name.endswith("_f64") else np.float32
                kinds = [None if t.endswith("*") else (scalar if t == "scalar_t" else _SCALARS[t]) for t, _ in params]
                out[name] = (module.get_function(name), kinds)
        except self.cupy.cuda.compiler.CompileException as err:  # NVRTC compiles on first use
            raise CudaCompileError("the CUDA cell did not compile:\n" + str(err)) from None
        return out

    def add_source(self, source: str) -> list[str]:
        """Compile CUDA source text with NVRTC and make its kernels launchable by name (replacing built-ins)."""
        kernels = self.compile(source)
        self._functions.update(kernels)
        return list(kernels)

    def restore_builtins(self) -> None:
        self._functions.clear()

    def launch(self, fn, geometry: geo.Geometry, args: list) -> None:
        kernel, kinds = fn
        values = tuple(a.array if kind is None else kind(a) for a, kind in zip(args, kinds))
        kernel(geometry[0], geometry[1], values)

    def upload(self, values: np.ndarray, out) -> None:
        out.array.set(values.reshape(-1))

    def download(self, a, shape, strides, offset) -> np.ndarray:
        item = a.array.itemsize
        view = self.cupy.lib.stride_tricks.as_strided(a.array[offset:], shape, tuple(s * item for s in strides))
        return self.cupy.asnumpy(view)


def _wrap(array) -> CupyArray:
    out = object.__new__(CupyArray)
    out.array = array
    return out


class CudaBackend:
    """A CUDA device module: the course's kernel names, each a checked launch on the executor."""

    __tile_size__ = 8

    def __init__(self, executor):
        self.x = executor
        self.Array = executor.Array
        self.__device_name__ = executor.name

    # ---- plumbing ----
    def _fn(self, name: str, dtype: str):
        return self.x.function(name + _SUFFIX[dtype])

    def _launch(self, name: str, dtype: str, geometry: geo.Geometry, *args) -> None:
        self.x.launch(self._fn(name, dtype), geometry, list(args))

    def _elementwise(self, name: str, n: int, *args) -> None:
        if n:
            self._launch(name, _dtype(name, args), geo.elementwise(n, self.x.max_blocks), *args, n)

    @contextlib.contextmanager
    def checked(self, on: bool = True) -> Iterator[None]:
        """Within this block every launch also checks for out-of-bounds accesses and order-dependent results."""
        before, self.x.checked_mode = self.x.checked_mode, on
        try:
            yield
        finally:
            self.x.checked_mode = before

    # ---- transfers ----
    def to_numpy(self, a, shape, strides, offset) -> np.ndarray:
        shape, strides = tuple(int(s) for s in shape), tuple(int(s) for s in strides)
        _view_args("to_numpy", shape, strides)
        layout.check_bounds("to_numpy", shape, strides, int(offset), a.size)
        if math.prod(shape) == 0:
            return np.empty(shape, dtype=a.dtype)
        return self.x.download(a, shape, strides, int(offset))

    def from_numpy(self, arr, out) -> None:
        values = np.ascontiguousarray(arr, dtype=out.dtype).reshape(-1)
        if values.size != out.size:
            raise ValueError(f"from_numpy: input has {values.size} elements, buffer has {out.size}")
        self.x.upload(values, out)

    # ---- strided copies ----
    def fill(self, out, val) -> None:
        self._elementwise("fill", out.size, out, float(val))

    def _strided(self, name: str, src, out, shape, strides, offset, view_size: int) -> None:
        shape, strides, offset = tuple(int(s) for s in shape), tuple(int(s) for s in strides), int(offset)
        _view_args(name, shape, strides)
        layout.check_bounds(name, shape, strides, offset, view_size)
        n = math.prod(shape)
        if n:
            dtype = out.dtype
            meta = self.x.constant(shape + strides)
            self._launch(name, dtype, geo.elementwise(n, self.x.max_blocks), src, out, meta, len(shape), offset, n)

    def compact(self, a, out, shape, strides, offset) -> None:
        _same_dtype("compact", a, out)
        _at_least("compact", out, math.prod(shape))
        self._strided("compact", a, out, shape, strides, offset, a.size)

    def ewise_setitem(self, a, out, shape, strides, offset) -> None:
        _same_dtype("ewise_setitem", a, out)
        _at_least("ewise_setitem", a, math.prod(shape))
        self._strided("ewise_setitem", a, out, shape, strides, offset, out.size)

    def scalar_setitem(self, size, val, out, shape, strides, offset) -> None:
        self._strided("scalar_setitem", float(val), out, shape, strides, offset, out.size)

    # ---- elementwise ----
    def _binary(name: str):  # noqa: N805 - a factory used in the class body
        def ewise(self, a, b, out) -> None:
            _same_arrays(f"ewise_{name}", a, b, out)
            self._elementwise(f"ewise_{name}", a.size, a, b, out)

        def scalar(self, a, val, out) -> None:
            _same_arrays(f"scalar_{name}", a, out)
            self._elementwise(f"scalar_{name}", a.size, a, float(val), out)

        return ewise, scalar

    def _unary(name: str):  # noqa: N805
        def unary(self, a, out) -> None:
            _same_arrays(name, a, out)
            self._elementwise(name, a.size, a, out)

        return unary

    ewise_add, scalar_add = _binary("add")
    ewise_mul, scalar_mul = _binary("mul")
    ewise_div, scalar_div = _binary("div")
    ewise_maximum, scalar_maximum = _binary("maximum")
    ewise_eq, scalar_eq = _binary("eq")
    ewise_ge, scalar_ge = _binary("ge")
    ewise_power, scalar_power = _binary("power")
    ewise_log, ewise_exp, ewise_tanh = _unary("ewise_log"), _unary("ewise_exp"), _unary("ewise_tanh")
    del _binary, _unary

    # ---- reductions ----
    def _reduce(self, kind: str, a, out, outer: int, reduce: int, inner: int) -> None:
        outer, reduce, inner = int(outer), int(reduce), int(inner)
        name = f"reduce_{kind}"
        if min(outer, reduce, inner) < 0:
            raise ValueError(f"{name}: negative size in (outer, reduce, inner) = {(outer, reduce, inner)}")
        if reduce == 0:
            raise ValueError(f"{name}: cannot reduce over an empty axis")
        _same_dtype(name, a, out)
        _at_least(name, a, outer * reduce * inner)
        _at_least(name, out, outer * inner)
        if outer * inner == 0:
            return
        if geo.use_rows_kernel(reduce, inner):
            self._launch(f"{name}_rows", a.dtype, geo.reduce_rows(outer, self.x.max_blocks), a, out, outer, reduce)
        else:
            self._launch(f"{name}_serial", a.dtype, geo.elementwise(outer * inner, self.x.max_blocks), a, out, outer,
                         reduce, inner)

    def reduce_sum_axis(self, a, out, outer, reduce_size, inner) -> None:
        self._reduce("sum", a, out, outer, reduce_size, inner)

    def reduce_max_axis(self, a, out, outer, reduce_size, inner) -> None:
        self._reduce("max", a, out, outer, reduce_size, inner)

    def reduce_sum(self, a, out, reduce_size) -> None:
        self._reduce("sum", a, out, a.size // reduce_size if reduce_size > 0 else 0, reduce_size, 1)

    def reduce_max(self, a, out, reduce_size) -> None:
        self._reduce("max", a, out, a.size // reduce_size if reduce_size > 0 else 0, reduce_size, 1)

    # ---- matmul ----
    def matmul(self, a, b, out, m, n, p) -> None:
        """The course's 2-D product of compact operands (through the register-blocked kernel)."""
        m, n, p = _dims("matmul", m, n, p)
        self.matmul_strided(a, b, out, 1, m, n, p, 0, (m * n, n, 1), 0, (n * p, p, 1))

    def matmul_shared(self, a, b, out, m, n, p) -> None:
        """The course's shared-memory tiled kernel (chapter 6's lesson), for comparison."""
        m, n, p = _dims("matmul_shared", m, n, p)
        _matmul_operands("matmul_shared", a, b, out, m * n, n * p, m * p)
        if m * p:
            self._launch("matmul_shared", a.dtype, geo.matmul_shared(m, p), a, b, out, m, n, p)

    def matmul_naive(self, a, b, out, m, n, p) -> None:
        m, n, p = _dims("matmul_naive", m, n, p)
        _matmul_operands("matmul_naive", a, b, out, m * n, n * p, m * p)
        if m * p:
            self._launch("matmul_naive", a.dtype, geo.elementwise(m * p, self.x.max_blocks), a, b, out, m, n, p)

    def matmul_tiled(self, a, b, out, m, n, p) -> None:
        m, n, p = _dims("matmul_tiled", m, n, p)
        t = self.__tile_size__
        if m % t or n % t or p % t:
            raise ValueError(f"matmul_tiled: m, n, p = {m}, {n}, {p} must be multiples of the tile size {t}")
        _matmul_operands("matmul_tiled", a, b, out, m * n, n * p, m * p)
        if m * p:
            self._launch("matmul_tiled", a.dtype, geo.elementwise(m * p, self.x.max_blocks), a, b, out, m, n, p)

    def matmul_strided(self, a, b, out, batch, m, n, p, a_offset, a_strides, b_offset, b_strides) -> None:
        """out[z] = A[z] @ B[z] for z < batch, A and B read through (batch, row, column) strides."""
        batch, m, n, p = _dims("matmul_strided", batch, m, n, p)
        _matmul_operands("matmul_strided", a, b, out, 0, 0, batch * m * p)
        layout.check_bounds("matmul_strided (a)", (batch, m, n), tuple(a_strides), int(a_offset), a.size)
        layout.check_bounds("matmul_strided (b)", (batch, n, p), tuple(b_strides), int(b_offset), b.size)
        if batch * m * p == 0:
            return
        if n == 0:
            self.fill(out, 0.0)
            return
        self._launch("matmul_strided", a.dtype, geo.matmul_strided(batch, m, p), a, b, out, batch, m, n, p,
                     int(a_offset), *(int(s) for s in a_strides), int(b_offset), *(int(s) for s in b_strides))

    # ---- optimizer ----
    def adam_step(self, p, g, m, v, out_p, out_m, out_v, lr, beta1, beta2, eps, weight_decay, bias1, bias2,
                  first) -> None:
        _same_arrays("adam_step", p, g, m, v, out_p, out_m, out_v)
        if bias1 <= 0 or bias2 <= 0:
            raise ValueError("adam_step: bias corrections must be positive (t >= 1)")
        n = p.size
        if n:
            self._launch("adam_step", p.dtype, geo.elementwise(n, self.x.max_blocks), p, g, m, v, out_p, out_m, out_v,
                         n, lr / bias1, beta1, beta2, eps, weight_decay, 1.0 / math.sqrt(bias2), int(bool(first)))

    # ---- fused ops (contract: needle/backend_ndarray/fused.py) ----
    def _with_status(self, op: str, what: str, ids, n_ids: int, num: int, name: str, geometry, *args) -> None:
        """Launches a kernel that flags bad ids in a status word, then raises for the first bad one."""
        status = self.Array(1, "int32")
        self.x.upload(np.zeros(1, np.int32), status)
        self._launch(name, args[0].dtype, geometry, *args, status)
        if self.x.download(status, (1,), (1,), 0)[0]:
            raise _id_error(op, what, self.to_numpy(ids, (n_ids,), (1,), 0), num)

    def embedding_gather(self, weight, ids, out, n_ids, num, dim) -> None:
        n_ids, num, dim = _dims("embedding_gather", n_ids, num, dim)
        _sized("embedding_gather", ("weight", weight, num * dim), ("ids", ids, n_ids), ("out", out, n_ids * dim))
        if n_ids * dim:
            self._with_status("embedding_gather", "id", ids, n_ids, num, "embedding_gather",
                              geo.elementwise(n_ids * dim, self.x.max_blocks), weight, ids, out, n_ids, num, dim)

    def embedding_scatter_add(self, grad, ids, out, n_ids, num, dim) -> None:
        n_ids, num, dim = _dims("embedding_scatter_add", n_ids, num, dim)
        _sized("embedding_scatter_add", ("grad", grad, n_ids * dim), ("ids", ids, n_ids), ("out", out, num * dim))
        self.fill(out, 0.0)
        if n_ids * dim:
            self._with_status("embedding_scatter_add", "id", ids, n_ids, num, "embedding_scatter_add",
                              geo.elementwise(n_ids * dim, self.x.max_blocks), grad, ids, out, n_ids, num, dim)

    def softmax_xent(self, logits, labels, loss, lse, m, k) -> None:
        m, k = _dims("softmax_xent", m, k)
        _sized("softmax_xent", ("logits", logits, m * k), ("labels", labels, m), ("loss", loss, m), ("lse", lse, m))
        if m == 0:
            return
        if k == 0:
            raise ValueError("softmax_xent: no classes (k = 0)")
        rows = geo.use_rows_kernel(k, 1)
        geometry = geo.reduce_rows(m, self.x.max_blocks) if rows else geo.elementwise(m, self.x.max_blocks)
        self._with_status("softmax_xent", "label", labels, m, k, "softmax_xent_rows" if rows else "softmax_xent_serial",
                          geometry, logits, labels, loss, lse, m, k)

    def softmax_xent_grad(self, logits, labels, lse, out_grad, out, m, k) -> None:
        m, k = _dims("softmax_xent_grad", m, k)
        _sized("softmax_xent_grad", ("logits", logits, m * k), ("labels", labels, m), ("lse", lse, m),
               ("out_grad", out_grad, 1), ("out", out, m * k))
        if m * k:
            self._launch("softmax_xent_grad", logits.dtype, geo.elementwise(m * k, self.x.max_blocks), logits, labels,
                         lse, out_grad, out, m, k)

    def sigmoid(self, a, out, n) -> None:
        (n,) = _dims("sigmoid", n)
        _sized("sigmoid", ("a", a, n), ("out", out, n))
        self._elementwise("sigmoid", n, a, out)

    def sigmoid_grad(self, y, dy, out, n) -> None:
        (n,) = _dims("sigmoid_grad", n)
        _sized("sigmoid_grad", ("y", y, n), ("dy", dy, n), ("out", out, n))
        self._elementwise("sigmoid_grad", n, y, dy, out)

    def batchnorm_stats(self, x, mean, var, outer, c, inner) -> None:
        outer, c, inner = _dims("batchnorm_stats", outer, c, inner)
        if outer * inner == 0:
            raise ValueError("batchnorm_stats: no elements per channel")
        _sized("batchnorm_stats", ("x", x, outer * c * inner), ("mean", mean, c), ("var", var, c))
        if c:
            self._launch("batchnorm_stats", x.dtype, geo.reduce_rows(c, self.x.max_blocks), x, mean, var, outer, c, inner)

    def batchnorm_forward(self, x, weight, bias, mean, var, out, outer, c, inner, eps) -> None:
        outer, c, inner = _dims("batchnorm_forward", outer, c, inner)
        n = outer * c * inner
        _sized("batchnorm_forward", ("x", x, n), ("weight", weight, c), ("bias", bias, c), ("mean", mean, c),
               ("var", var, c), ("out", out, n))
        if n:
            self._launch("batchnorm_forward", x.dtype, geo.elementwise(n, self.x.max_blocks), x, weight, bias, mean,
                         var, out, outer, c, inner, float(eps))

    def batchnorm_backward(self, x, dy, weight, mean, var, dx, dweight, dbias, outer, c, inner, eps,
                           batch_stats) -> None:
        outer, c, inner = _dims("batchnorm_backward", outer, c, inner)
        n = outer * c * inner
        _sized("batchnorm_backward", ("x", x, n), ("dy", dy, n), ("weight", weight, c), ("mean", mean, c),
               ("var", var, c), ("dx", dx, n), ("dweight", dweight, c), ("dbias", dbias, c))
        if c:
            self._launch("batchnorm_backward", x.dtype, geo.reduce_rows(c, self.x.max_blocks), x, dy, weight, mean,
                         var, dx, dweight, dbias, outer, c, inner, float(eps), int(bool(batch_stats)))

    def layernorm_forward(self, x, weight, bias, out, rows, dim, eps) -> None:
        rows, dim = _dims("layernorm_forward", rows, dim)
        if dim == 0:
            raise ValueError("layernorm_forward: rows of zero elements have no mean")
        _sized("layernorm_forward", ("x", x, rows * dim), ("weight", weight, dim), ("bias", bias, dim),
               ("out", out, rows * dim))
        if rows:
            self._launch("layernorm_forward", x.dtype, geo.elementwise(rows, self.x.max_blocks), x, weight, bias, out,
                         rows, dim, float(eps))

    def layernorm_backward(self, x, dy, weight, dx, dweight, dbias, rows, dim, eps) -> None:
        rows, dim = _dims("layernorm_backward", rows, dim)
        if dim == 0:
            raise ValueError("layernorm_backward: rows of zero elements have no mean")
        _sized("layernorm_backward", ("x", x, rows * dim), ("dy", dy, rows * dim), ("weight", weight, dim),
               ("dx", dx, rows * dim), ("dweight", dweight, dim), ("dbias", dbias, dim))
        stats = self.Array(2 * rows, x.dtype)  # each row's (mean, rstd), shared by the two kernels
        if rows:
            self._launch("layernorm_backward_rows", x.dtype, geo.elementwise(rows, self.x.max_blocks), x, dy, weight,
                         dx, stats, rows, dim, float(eps))
        self._launch("layernorm_backward_params", x.dtype, geo.elementwise(dim, self.x.max_blocks), x, dy, stats,
                     dweight, dbias, rows, dim)

    def lstm_cell(self, z, c, h_out, c_out, bs, h) -> None:
        bs, h = _dims("lstm_cell", bs, h)
        _sized("lstm_cell", ("z", z, bs * 4 * h), ("c", c, bs * h), ("h_out", h_out, bs * h), ("c_out", c_out, bs * h))
        if bs * h:
            self._launch("lstm_cell", z.dtype, geo.elementwise(bs * h, self.x.max_blocks), z, c, h_out, c_out, bs, h)

    def lstm_cell_grad(self, z, c, dh, dc_new, dz, dc, bs, h) -> None:
        bs, h = _dims("lstm_cell_grad", bs, h)
        _sized("lstm_cell_grad", ("z", z, bs * 4 * h), ("c", c, bs * h), ("dh", dh, bs * h), ("dc_new", dc_new, bs * h),
               ("dz", dz, bs * 4 * h), ("dc", dc, bs * h))
        if bs * h:
            self._launch("lstm_cell_grad", z.dtype, geo.elementwise(bs * h, self.x.max_blocks), z, c, dh, dc_new, dz,
                         dc, bs, h)

    def im2col(self, a, out, n, h, w, c, kh, kw, stride, pad_h, pad_w, out_h, out_w, offset, strides) -> None:
        dims = _dims("im2col", n, h, w, c, kh, kw, stride, pad_h, pad_w, out_h, out_w)
        n, h, w, c, kh, kw, stride, pad_h, pad_w, out_h, out_w = dims
        if stride < 1:
            raise ValueError("im2col: stride must be >= 1")
        strides, offset = [int(s) for s in strides], int(offset)
        _view_args("im2col", (n, h, w, c), strides)
        _same_dtype("im2col", a, out)
        layout.check_bounds("im2col", (n, h, w, c), strides, offset, a.size)
        size = n * out_h * out_w * kh * kw * c
        _at_least("im2col", out, size, "out")
        if a is out:
            raise ValueError("im2col: an output buffer is also an input")
        if size:
            self._launch("im2col", a.dtype, geo.elementwise(size, self.x.max_blocks), a, out, *dims, offset, *strides)

    def col2im(self, col, out, n, h, w, c, kh, kw, stride, pad_h, pad_w, out_h, out_w) -> None:
        dims = _dims("col2im", n, h, w, c, kh, kw, stride, pad_h, pad_w, out_h, out_w)
        n, h, w, c, kh, kw, stride, pad_h, pad_w, out_h, out_w = dims
        if stride < 1:
            raise ValueError("col2im: stride must be >= 1")
        _sized("col2im", ("col", col, n * out_h * out_w * kh * kw * c), ("out", out, n * h * w * c))
        if col is out:
            raise ValueError("col2im: an output buffer is also an input")
        if n * h * w * c:
            self._launch("col2im", col.dtype, geo.elementwise(n * h * w * c, self.x.max_blocks), col, out, *dims)

    def __repr__(self) -> str:
        return f"<needle CUDA device module on {self.x.name}>"


def _dtype(name: str, args) -> str:
    for a in args:
        dtype = getattr(a, "dtype", None)
        if isinstance(dtype, str):
            return dtype
    raise TypeError(f"{name}: no buffer among the arguments")


def _check_array(op: str, a) -> None:
    if a is None or not hasattr(a, "ptr") or not hasattr(a, "size"):
        raise TypeError(f"{op}: expected a device Array, got {type(a).__name__}")


def _same_dtype(op: str, *arrays) -> None:
    for a in arrays:
        _check_array(op, a)
    if any(a.dtype != arrays[0].dtype for a in arrays):
        raise ValueError(f"{op}: dtype mismatch ({', '.join(a.dtype for a in arrays)})")


def _same_arrays(op: str, *arrays) -> None:
    """Elementwise kernels need operands of one size and dtype."""
    _same_dtype(op, *arrays)
    if any(a.size != arrays[0].size for a in arrays):
        raise ValueError(f"{op}: operands differ in size ({', '.join(str(a.size) for a in arrays)})")


def _at_least(op: str, a, n: int, what: str = "a buffer") -> None:
    if a.size < n:
        raise ValueError(f"{op}: {what} holds {a.size} elements, needs {n}")


def _sized(op: str, *buffers: tuple[str, Any, int]) -> None:
    """Every (name, buffer, elements needed): one dtype, each large enough, outputs never inputs."""
    _same_dtype(op, *(b for _, b, _ in buffers))
    for name, b, n in buffers:
        _at_least(op, b, n, name)


def _id_error(op: str, what: str, ids: np.ndarray, num: int) -> Exception:
    """The error for the first id (or label) that is not a whole number in [0, num), as cpu() words it."""
    error = id_error(ids, num, what, op)
    return error if error is not None else RuntimeError(f"{op}: a kernel reported a bad {what} that the host cannot find")


def _view_args(op: str, shape, strides) -> None:
    if len(shape) != len(strides):
        raise ValueError(f"{op}: shape {shape} and strides {strides} differ in length")
    if any(n < 0 for n in shape):
        raise ValueError(f"{op}: negative dimension in shape {shape}")


def _dims(op: str, *dims) -> tuple[int, ...]:
    dims = tuple(int(d) for d in dims)
    if any(d < 0 for d in dims):
        raise ValueError(f"{op}: negative dimension in {dims}")
    return dims


def _matmul_operands(op: str, a, b, out, na: int, nb: int, nout: int) -> None:
    _same_dtype(op, a, b, out)
    _at_least(op + " (a)", a, na)
    _at_least(op + " (b)", b, nb)
    _at_least(op + " (out)", out, nout)
    if out is a or out is b:
        raise ValueError(f"{op}: out must not be one of the inputs")


def simulator() -> CudaBackend | None:
    """The cuda_sim() device module, or None when the simulator was not built."""
    try:
        from . import ndarray_backend_cuda_sim
    except ImportError:  # pragma: no cover - depends on the build
        return None
    return CudaBackend(SimExecutor(ndarray_backend_cuda_sim))


def gpu() -> tuple[CudaBackend | None, str]:
    """The cuda() device module and "", or None and why there is none (no CuPy, no GPU)."""
    try:
        import cupy
    except ImportError:
        return None, "CuPy is not installed (pip install needle[cuda12] or needle[cuda13])"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None, "no GPU is visible"
        return CudaBackend(CupyExecutor(cupy)), ""
    except Exception as e:  # CuPy raises its own errors when the driver or runtime is missing
        return None, f"CuPy finds no usable GPU ({type(e).__name__}: {e})"
