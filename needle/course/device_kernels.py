"""A learner's device kernels, installed over a device module: theirs where installed, needle's elsewhere.

    from needle.course import device_kernels
    device_kernels.cpu.matmul = build        # what the `%%needle_cpp cpu_backend.matmul` cell does (via course.install)

A device (`ndl.cpu()`) holds its kernel module in `device.mod`; installing a kernel replaces that by a
`DeviceOverlay`, a module object that answers the learner's kernels for the names they installed and forwards every
other name to needle's module. NDArray looks its kernels up at call time, so every later cell, op and model runs on
the learner's kernels. Names that would bypass an installed kernel (needle's strided `matmul_strided` bypasses the
course's `matmul`) are hidden while it is installed, so NDArray takes the course's path through it.

Installs go through `course.install` with a target `needle.course.device_kernels:<device>.<bundle>`: a bundle is
the group of kernels one exercise writes (`elementwise` = `ewise_add`, `scalar_add`, ...). `course.reset()`
restores needle's module. The table and the overlay's bookkeeping serve every device: chapter 06's CUDA kernels
(`cuda_exercises.py`) install through a `KernelTable` too, into a `KernelOverlay` that serves compiled kernels.
"""
from __future__ import annotations

import types
from collections import Counter
from typing import Any, Callable, Iterable, Mapping

__all__ = ["KernelOverlay", "DeviceOverlay", "KernelTable", "ReferenceKernels",
           "register", "table", "target", "bundle_of", "cpu",
           "learner_kernel", "calls", "reset_calls", "ELEMENTWISE"]

_COUNTS: Counter = Counter()


class ReferenceKernels:
    """needle's own kernels of one bundle (what `course.reference` returns for a kernel exercise)."""

    def __init__(self, bundle: str, kernels: Mapping[str, Callable], kind: str = ""):
        self.bundle = bundle
        self.kernels = dict(kernels)
        self.kind = kind

    def __getattr__(self, name: str) -> Callable:
        try:
            return self.__dict__["kernels"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        if not self.kernels:
            return f"<needle's {self.bundle} {self.kind}kernels>"
        return f"<needle's {self.bundle} {self.kind}kernels: {', '.join(self.kernels)}>"


def _learner_kernel(name: str, fn: Callable, base: Callable | None, dtype_ok: Callable[[Any], bool]) -> Callable:
    """The learner's kernel as the overlay calls it: counted, and needle's for buffers of a dtype it does not take."""

    def kernel(*args: Any) -> Any:
        if base is not None:
            for a in args:
                if not dtype_ok(a):
                    return base(*args)
        _COUNTS[name] += 1
        return fn(*args)

    kernel.__name__ = kernel.__qualname__ = name
    kernel.__doc__ = f"your {name} (installed by a %%needle_cpp cell); needle's for buffers it does not take"
    kernel.learner = fn  # the raw function, for timing it without the wrapper
    return kernel


class KernelOverlay:
    """What the overlay of every device shares: the learner's kernels by name over needle's module (`_base`), and
    the names of needle's that would bypass them, hidden while they are installed. A device's overlay says how it
    serves a kernel (`_serve`, `_unserve`) and forwards every other name to needle's module."""

    def _start(self, base: Any) -> None:
        self.__dict__.update(_base=base, _learner={}, _hides={}, _hidden=frozenset())

    def _is_hidden(self, name: str) -> bool:
        return name in self.__dict__.get("_hidden", ())

    def _serve(self, name: str, kernel: Any) -> None:
        pass

    def _unserve(self, name: str) -> None:
        pass

    def add(self, kernels: Mapping[str, Any], hides: Mapping[str, Iterable[str]] | None = None) -> None:
        """Install the learner's `kernels`; `hides[name]`: needle's names that would bypass kernel `name`."""
        for name, kernel in kernels.items():
            self._learner[name] = kernel
            self._hides[name] = tuple((hides or {}).get(name, ()))
            self._serve(name, kernel)
        self._refresh_hidden()

    def remove(self, names: Iterable[str]) -> None:
        for name in names:
            self._learner.pop(name, None)
            self._hides.pop(name, None)
            self._unserve(name)
        self._refresh_hidden()

    def _refresh_hidden(self) -> None:
        hidden = {h for hides in self._hides.values() for h in hides}
        self.__dict__["_hidden"] = frozenset(hidden - set(self._learner))


class DeviceOverlay(KernelOverlay, types.ModuleType):
    """A device module seen through the learner's kernels (Python-callable, as pybind11 binds them): theirs where
    installed, needle's module elsewhere."""

    def __init__(self, base: types.ModuleType, dtype_ok: Callable[[Any], bool]):
        types.ModuleType.__init__(self, getattr(base, "__name__", "device") + "+yours")
        self._start(base)
        self.__dict__["_dtype_ok"] = dtype_ok

    def __getattr__(self, name: str) -> Any:  # only for names not installed (those live in __dict__)
        if self._is_hidden(name):
            raise AttributeError(f"{name} is hidden while your kernels are installed")
        return getattr(self.__dict__["_base"], name)

    def _serve(self, name: str, fn: Callable) -> None:
        self.__dict__[name] = _learner_kernel(name, fn, getattr(self._base, name, None), self._dtype_ok)

    def _unserve(self, name: str) -> None:
        self.__dict__.pop(name, None)

    def learner_kernels(self) -> dict[str, Callable]:
        """name -> the learner's raw function, for every installed kernel."""
        return dict(self._learner)


def _float32_or_other(arg: Any) -> bool:
    """A float32 buffer, or not a buffer at all (sizes, shapes, scalars)."""
    dtype = getattr(arg, "dtype", None)
    return dtype is None or not hasattr(arg, "ptr") or dtype == "float32"


class KernelTable:
    """The kernel bundles of one device; setting an attribute installs a bundle, `course.reset()` restores it.

    `device()` gives the device (its kernel module is `device.mod`); `make_overlay(module)` wraps needle's module
    when the first kernel is installed; `bypasses[kernel]` are needle's names that would bypass an installed kernel
    (a bundle may name more when it is declared)."""

    def __init__(self, device: Callable[[], Any], make_overlay: Callable[[Any], KernelOverlay] | None = None,
                 bypasses: Mapping[str, Iterable[str]] | None = None, kind: str = ""):
        if make_overlay is None:
            make_overlay = lambda mod: DeviceOverlay(mod, _float32_or_other)  # noqa: E731
        object.__setattr__(self, "_device", device)
        object.__setattr__(self, "_make_overlay", make_overlay)
        object.__setattr__(self, "_bypasses", {k: tuple(v) for k, v in (bypasses or {}).items()})
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_bundles", {})

    def declare(self, bundle: str, kernels: Iterable[str], hides: Iterable[str] = ()) -> None:
        """Name the kernels an exercise's bundle holds, and needle's names that would bypass them (the checks module
        of the chapter does this)."""
        self._bundles[bundle] = (tuple(kernels), tuple(hides))

    def kernels(self, bundle: str) -> tuple[str, ...]:
        try:
            return self._bundles[bundle][0]
        except KeyError:
            declared = ", ".join(self._bundles)
            raise AttributeError(f"no {self._kind}kernel bundle {bundle!r}; declared: {declared}") from None

    def _hides(self, bundle: str) -> dict[str, tuple[str, ...]]:
        names, hides = self._bundles[bundle]
        return {k: self._bypasses.get(k, ()) + hides for k in names}

    def base(self) -> Any:
        """needle's own kernel module of the device (also while an overlay is installed)."""
        mod = self._device().mod
        return mod.__dict__["_base"] if isinstance(mod, KernelOverlay) else mod

    def overlay(self, device: Any = None) -> Any:
        """The device's overlay while a learner's kernel is installed, else None."""
        mod = (device if device is not None else self._device()).mod
        return mod if isinstance(mod, KernelOverlay) else None

    def __getattr__(self, bundle: str) -> ReferenceKernels:
        if bundle.startswith("_"):
            raise AttributeError(bundle)
        names = self.kernels(bundle)
        base = self.base()
        return ReferenceKernels(bundle, {k: getattr(base, k) for k in names if hasattr(base, k)}, self._kind)

    def __setattr__(self, bundle: str, value: Any) -> None:
        names = self.kernels(bundle)
        device = self._device()
        if isinstance(value, ReferenceKernels):  # course.reset() puts needle's back
            overlay = self.overlay(device)
            if overlay is not None:
                overlay.remove(names)
            return
        kernels = {k: fn for k, fn in dict(getattr(value, "kernels", value)).items() if k in names and fn is not None}
        if not kernels:
            return
        overlay = self.overlay(device)
        if overlay is None:
            from . import install

            overlay = self._make_overlay(device.mod)
            install._set(device, "mod", overlay)  # saved, so course.reset() restores needle's module
        overlay.add(kernels, self._hides(bundle))


def _cpu_device() -> Any:
    from needle.backend_ndarray import ndarray

    return ndarray.cpu()


ELEMENTWISE = ("ewise_add", "scalar_add", "ewise_mul", "scalar_mul", "ewise_div", "scalar_div", "scalar_power",
                "ewise_maximum", "scalar_maximum", "ewise_eq", "scalar_eq", "ewise_ge", "scalar_ge",
                "ewise_log", "ewise_exp", "ewise_tanh")

# needle's cpu() kernels beyond the course's contract, each of which would do the work of an installed kernel
cpu = KernelTable(_cpu_device, bypasses={
    "matmul": ("matmul_strided",),
    "matmul_tiled": ("matmul_strided",),
    "reduce_sum": ("reduce_sum_axis",),
    "reduce_max": ("reduce_max_axis",),
    **{k: ("adam_step",) for k in ELEMENTWISE},
})

_TABLES = {"cpu": cpu}


def register(device_name: str, kernel_table: KernelTable) -> KernelTable:
    """Make a device's kernel table known by name (targets `needle.course.device_kernels:<name>.<bundle>`)."""
    _TABLES[device_name] = kernel_table
    globals()[device_name] = kernel_table
    return kernel_table


def table(device_name: str) -> KernelTable:
    """The kernel table of a device by name ("cpu")."""
    try:
        return _TABLES[device_name]
    except KeyError:
        raise KeyError(f"no kernel table for device {device_name!r}; known: {', '.join(_TABLES)}") from None


def learner_kernel(device_name: str, name: str) -> Callable | None:
    """The learner's installed kernel `name` of a device (their raw function), or None while needle's is in place."""
    overlay = table(device_name).overlay()
    return None if overlay is None else overlay.learner_kernels().get(name)


def calls() -> dict[str, int]:
    """How often each of the learner's installed kernels ran since `reset_calls()` (float32 calls only)."""
    return dict(_COUNTS)


def reset_calls() -> None:
    _COUNTS.clear()


_PREFIX = __name__ + ":"


def target(device_name: str, bundle: str) -> str:
    """The `course.install` target of a kernel bundle: `needle.course.device_kernels:<device>.<bundle>`."""
    return f"{_PREFIX}{device_name}.{bundle}"


def bundle_of(exercise_target: str) -> tuple[KernelTable, tuple[str, ...]] | None:
    """(table, kernel names) when an exercise's target is a kernel bundle, else None."""
    if not exercise_target.startswith(_PREFIX):
        return None
    device_name, _, bundle = exercise_target[len(_PREFIX):].partition(".")
    tab = table(device_name)
    return tab, tab.kernels(bundle)
