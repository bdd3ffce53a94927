"""Chapter 04 (course hw3 part 1): the Python side of the strided NDArray.

compact_strides, is_compact, reshape, permute, broadcast_to, process_slice and __getitem__. Every case is drawn
from a seeded generator: a random base array, put through random numpy view steps (transposes, slices with steps of
either sign, int indices, broadcasts), is mirrored as an NDArray over the same buffer layout; the learner's method
runs on it and is compared with numpy's answer, element by element and in layout (a view must share the buffer).
While one exercise is checked, needle's reference stands in for the other exercises of the chapter (one bug, one
failure).
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterator

import numpy as np

from needle.backend_ndarray.ndarray import NDArray, default_device

from ..cases import random_shape, rng_for
from ..compare import expect, expect_close
from ..errors import CheckFailed
from ..install import reference, resolve
from ..registry import exercise_check, get

ND = "needle.backend_ndarray.ndarray"
METHODS = ("compact_strides", "is_compact", "reshape", "permute", "broadcast_to", "process_slice", "__getitem__")
IDS = tuple(f"ndarray.{m}" for m in METHODS)


@contextlib.contextmanager
def _others_are_references(exercise_id: str) -> Iterator[None]:
    """During a check, every other exercise of this chapter runs needle's reference (one bug, one failure)."""
    saved = []
    for other in IDS:
        if other == exercise_id:
            continue
        owner, attr = resolve(get(other).target)
        saved.append((owner, attr, owner.__dict__[attr]))
        setattr(owner, attr, reference(get(other).target))
    try:
        yield
    finally:
        for owner, attr, value in reversed(saved):
            setattr(owner, attr, value)


def learner_method(impl: Any, attr: str) -> Callable:
    """The learner's own function for `attr`: the function itself, a static method's function, or the method of a
    class they wrote (the check calls it directly, whatever wraps the installed attribute)."""
    if isinstance(impl, type):
        impl = vars(impl).get(attr, impl)
    return impl.__func__ if isinstance(impl, (staticmethod, classmethod)) else impl


def _checked(exercise_id: str) -> Callable[[Callable[[Callable], int]], Callable[[Any], int]]:
    """A check that calls the learner's function, with the chapter's other methods as needle's references."""
    attr = exercise_id.split(".", 1)[1]

    def wrap(body: Callable[[Callable], int]) -> Callable[[Any], int]:
        def check(impl: Any) -> int:
            with _others_are_references(exercise_id):
                return body(learner_method(impl, attr))

        check.__doc__ = body.__doc__
        return check

    return wrap


# the end of the last hint tier of every exercise that builds a view
_VIEW = "Build the view with NDArray.make(shape, strides, self.device, self._handle, offset), which allocates nothing."


# --- cases: numpy views mirrored as NDArrays over the same layout ---------------------------------------------------

def mirror(view: np.ndarray, base: np.ndarray) -> NDArray:
    """The NDArray with `view`'s shape, strides and offset (in elements) over a buffer holding `base`'s elements.

    `base` must be a C-contiguous float32 array and `view` a view of it (numpy slicing, transposes, broadcasts)."""
    item = base.itemsize
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // item
    buffer = NDArray(base.reshape(-1), device=default_device())
    return NDArray.make(view.shape, tuple(s // item for s in view.strides), buffer.device, buffer._handle, int(offset))


def describe(a: NDArray) -> str:
    """shape, strides and offset of an NDArray, and the size of its buffer."""
    return f"shape {a.shape}, strides {a.strides}, offset {a._offset} over a buffer of {a._handle.size}"


def _base(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Distinct values (so a wrong position is never right by accident), C-contiguous float32."""
    return (rng.permutation(math.prod(shape)) + 1).astype(np.float32).reshape(shape)


def random_slice(rng: np.random.Generator, n: int, allow_empty: bool = False) -> slice:
    """A slice of an axis of length n: start/stop None, negative or past the end; step of either sign."""
    while True:
        bound = lambda: None if rng.random() < 0.3 else int(rng.integers(-n - 2, n + 3))  # noqa: E731
        step = [None, 1, 1, 2, 3, -1, -2][int(rng.integers(0, 7))]
        sl = slice(bound(), bound(), step)
        if allow_empty or len(range(n)[sl]):
            return sl


def random_view(rng: np.random.Generator, steps: int | None = None, max_ndim: int = 4,
                broadcast: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(base, view): a random compact base and a view of it made by 0-3 numpy view steps."""
    base = _base(rng, random_shape(rng, 1, max_ndim, 5))
    view = base
    for _ in range(int(rng.integers(0, 4)) if steps is None else steps):
        kind = int(rng.integers(0, 4 if broadcast else 3))
        if kind == 0:  # transpose
            view = view.transpose(rng.permutation(view.ndim))
        elif kind == 1:  # a slice (with a step) on every axis
            view = view[tuple(random_slice(rng, n) for n in view.shape)]
        elif kind == 2:  # an int index on one axis, kept as a length-1 axis
            ax = int(rng.integers(0, view.ndim))
            i = int(rng.integers(0, view.shape[ax]))
            view = view[(slice(None),) * ax + (slice(i, i + 1),)]
        else:  # broadcast a length-1 axis
            ones = [ax for ax, n in enumerate(view.shape) if n == 1]
            if ones:
                shape = list(view.shape)
                shape[int(rng.choice(ones))] = int(rng.integers(2, 4))
                view = np.broadcast_to(view, shape)
    return base, view


def _shares_buffer(got: Any, a: NDArray, what: str) -> None:
    expect(isinstance(got, NDArray), f"{what} must return an NDArray, got {type(got).__name__}")
    expect(got._handle is a._handle,
           f"{what} must return a view of the same buffer (no copy): it returned an array with its own buffer of "
           f"{got._handle.size} elements")


def numpy_layout(view: np.ndarray, base: np.ndarray) -> str:
    """shape, strides and offset (in elements) of a numpy view of `base`, as describe() writes them."""
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // base.itemsize
    return f"shape {view.shape}, strides {tuple(s // base.itemsize for s in view.strides)}, offset {offset}"


def _grid(values: np.ndarray) -> str:
    return "\n".join("    " + line for line in np.array2string(values, precision=4, separator=" ").splitlines())


def _expect_view(got: Any, expected: np.ndarray, a: NDArray, what: str, base: np.ndarray | None = None) -> None:
    """`got` is a view of `a`'s buffer with `expected`'s shape and values (`expected` a numpy view of `base`)."""
    _shares_buffer(got, a, what)
    missing = len(got.shape) < expected.ndim and " (an axis went missing; an int index keeps its axis, with length 1)"
    expect(tuple(got.shape) == expected.shape,
           f"{what}: shape {tuple(got.shape)}, expected {expected.shape}" + (missing or ""))
    expect(len(got.strides) == len(got.shape),
           f"{what}: {len(got.strides)} strides for a shape of {len(got.shape)} axes")
    positions = [got._offset + sum(i * s for i, s in zip(idx, got.strides)) for idx in np.ndindex(*got.shape)]
    expect(all(0 <= p < a._handle.size for p in positions),
           f"{what}: your result ({describe(got)}) reads outside the buffer")
    values = got.numpy()
    if np.array_equal(values, expected):
        return
    if expected.size > 64:
        expect_close(values, np.ascontiguousarray(expected), what=f"{what}, result {describe(got)}", rtol=0, atol=0)
    wrong = next(i for i in np.ndindex(*expected.shape) if values[i] != expected[i])
    lines = [f"{what}: wrong elements",
             f"  your view:    {describe(got)}"]
    if base is not None:
        lines.append(f"  numpy's view: {numpy_layout(expected, base)}")
    lines += ["  expected (numpy):", _grid(expected), "  got:", _grid(values),
              f"  first wrong element: index {tuple(int(i) for i in wrong)}: expected {expected[wrong]:g}, got "
              f"{values[wrong]:g} (your view reads buffer[{positions[int(np.ravel_multi_index(wrong, expected.shape))]}])"]
    raise CheckFailed("\n".join(lines))


def _raises(fn: Callable[[], Any], kinds: tuple[type, ...]) -> BaseException | None:
    """The exception `fn` raised (None if it returned); a CheckFailed from a nested check passes through."""
    try:
        fn()
    except CheckFailed:
        raise
    except kinds as exc:
        return exc
    return None


# --- compact_strides ----------------------------------------------------------------------------------------------

@exercise_check("ndarray.compact_strides", target=f"{ND}:NDArray.compact_strides",
                hint="the strides, counted in elements, of a dense row-major array of the given shape: a tuple "
                     "of ints, one per axis",
                hints=["Row-major: the last axis varies fastest, so it moves through neighbouring buffer elements "
                       "(stride 1), and one step along an earlier axis skips a whole block, every element of the axes "
                       "after it.",
                       "s_(d-1) = 1 and s_k = n_(k+1) * s_(k+1): each stride is the product of the lengths of the "
                       "axes after it, so (2, 3, 4) has strides (12, 4, 1); a shape () has strides ().",
                       "Walk the shape from the last axis to the first with a running product that starts at 1: "
                       "record it, then multiply it by that axis's length. Return the records reversed, as a tuple."])
@_checked("ndarray.compact_strides")
def check_compact_strides(compact_strides: Callable) -> int:
    """Strides of dense row-major arrays of random shapes (with 0 to 4 axes) against numpy's."""
    rng = rng_for("ndarray.compact_strides")
    shapes = [(), (5,), (1, 1), (3, 1, 2)] + [random_shape(rng, 1, 4, 6) for _ in range(8)]
    for shape in shapes:
        got = compact_strides(shape)
        want = tuple(s // 4 for s in np.empty(shape, np.float32).strides)
        expect(isinstance(got, (tuple, list)) and all(isinstance(s, (int, np.integer)) for s in got),
               f"compact_strides({shape}) must return a tuple of ints, got {got!r}")
        expect(tuple(got) == want, f"compact_strides({shape}): got {tuple(got)}, expected {want} "
                                   f"(numpy's strides for this shape, divided by the 4 bytes of a float32)")
    return len(shapes)


# --- is_compact ---------------------------------------------------------------------------------------------------

def _unambiguous(a: NDArray, want: bool) -> bool:
    """True unless a length-1 axis with an unusual stride makes 'compact' a matter of definition."""
    lenient = [s for n, s in zip(a.shape, a.strides) if n != 1] == \
        [s for n, s in zip(a.shape, NDArray.compact_strides(a.shape)) if n != 1] and a.size == a._handle.size
    return lenient == want


@exercise_check("ndarray.is_compact", target=f"{ND}:NDArray.is_compact",
                hint="True exactly when a flat kernel could read this array's buffer as it is: dense "
                     "row-major, over the whole buffer",
                hints=["Two conditions, both needed: the strides are the compact strides of the array's own shape, "
                       "and the array covers its whole buffer. The first two rows of a (3, 4) array pass the first "
                       "and fail the second.",
                       "Compare the strides with NDArray.compact_strides of the shape (both as tuples), and self.size "
                       "with the size of the buffer, self._handle.size.",
                       "One line: return the two comparisons joined with and."])
@_checked("ndarray.is_compact")
def check_is_compact(is_compact: Callable) -> int:
    """Compact arrays, transposes, slices (also ones that keep compact strides but not the whole buffer), broadcasts."""
    rng = rng_for("ndarray.is_compact")
    base = _base(rng, (4, 3))
    cases = [("a compact (4, 3) array", base, base), ("its transpose", base, base.T),
             ("its first two rows (compact strides, but half of the buffer)", base, base[:2]),
             ("its last two rows (offset 6)", base, base[2:]), ("every other row", base, base[::2]),
             ("a row broadcast to (4, 3)", base, np.broadcast_to(base[1:2], (4, 3)))]
    while len(cases) < 16:
        b, v = random_view(rng)
        cases.append((f"a random view of a {b.shape} array", b, v))
    count = 0
    for what, b, v in cases:
        a = mirror(v, b)
        want = bool(reference(f"{ND}:NDArray.is_compact")(a))
        if not _unambiguous(a, want):
            continue
        got = is_compact(a)
        expect(isinstance(got, (bool, np.bool_)), f"is_compact() must return True or False, got {got!r}")
        expect(bool(got) == want, f"is_compact() of {what}, {describe(a)}: got {got}, expected {want}")
        count += 1
    return count


# --- reshape ------------------------------------------------------------------------------------------------------

def _factor_shapes(rng: np.random.Generator, size: int) -> tuple[int, ...]:
    """A random shape (1 to 4 axes) with `size` elements."""
    dims, left = [], size
    for _ in range(int(rng.integers(0, 3))):
        divisors = [d for d in range(1, left + 1) if left % d == 0]
        d = int(rng.choice(divisors))
        dims.append(d)
        left //= d
    dims.append(left)
    return tuple(int(d) for d in rng.permutation(dims))


@exercise_check("ndarray.reshape", target=f"{ND}:NDArray.reshape",
                hint="a view of this compact array with the new shape, over the same buffer and with no copy; "
                     "ValueError when the sizes differ or the array is not compact",
                hints=["A compact array read in row-major order is its buffer from left to right, whatever its shape, "
                       "so another shape of the same size is the same buffer with that shape's compact strides. A "
                       "non-compact array cannot be relabelled like that (section 5): refuse it.",
                       "Raise ValueError unless math.prod(new_shape) equals self.size and self.is_compact() is true. "
                       "The view: shape new_shape, strides NDArray.compact_strides(new_shape), the same handle and "
                       "the same offset.",
                       "Two `if ...: raise ValueError(...)` lines, then one return. " + _VIEW])
@_checked("ndarray.reshape")
def check_reshape(reshape: Callable) -> int:
    """Compact arrays to random shapes of the same size (values, layout, no copy); non-compact views and wrong sizes
    must raise ValueError; a contiguous slice may raise or must give the right values."""
    rng = rng_for("ndarray.reshape")
    count = 0
    for _ in range(8):
        x = _base(rng, random_shape(rng, 1, 4, 5))
        a = mirror(x, x)
        new = _factor_shapes(rng, x.size)
        got = reshape(a, new)
        _expect_view(got, x.reshape(new), a, f"reshape {describe(a)} to {new}", x)
        expect(tuple(got.strides) == tuple(s // 4 for s in np.empty(new, np.float32).strides),
               f"reshape to {new}: the result has strides {tuple(got.strides)}, but a compact array of shape {new} "
               f"has strides {NDArray.compact_strides(new)}")
        count += 1
    x = _base(rng, (4, 3))
    for what, v, new in (("a transposed (3, 4) view", x.T, (12,)), ("every other row", x[::2], (6,)),
                         ("a broadcast row", np.broadcast_to(x[1:2], (4, 3)), (3, 4))):
        a = mirror(v, x)
        exc = _raises(lambda: reshape(a, new), (Exception,))
        expect(isinstance(exc, ValueError),
               f"reshape of {what} ({describe(a)}) to {new} must raise ValueError (it is not compact: its elements "
               f"are not the buffer in row-major order), but it " +
               ("returned a result" if exc is None else f"raised {type(exc).__name__}: {exc}"))
        count += 1
    a = mirror(x, x)
    exc = _raises(lambda: reshape(a, (5, 2)), (Exception,))
    expect(isinstance(exc, ValueError), "reshape of a (4, 3) array to (5, 2) must raise ValueError (12 elements cannot "
           "fill 10), but it " + ("returned a result" if exc is None else f"raised {type(exc).__name__}: {exc}"))
    a = mirror(x[2:], x)  # contiguous, offset 6, half the buffer: refusing it is fine, a wrong result is not
    try:
        got = reshape(a, (6,))
    except ValueError:
        pass
    else:
        _expect_view(got, x[2:].reshape(6), a, f"reshape of the last two rows ({describe(a)}) to (6,)", x)
    return count + 2


# --- permute ------------------------------------------------------------------------------------------------------

@exercise_check("ndarray.permute", target=f"{ND}:NDArray.permute",
                hint="a view with the axes reordered the way numpy's transpose reorders them, over the same buffer",
                hints=["New axis k is old axis new_axes[k]. An axis takes its length and its stride along with it; "
                       "the buffer and the offset stay as they are.",
                       "shape[k] = self.shape[new_axes[k]] and strides[k] = self.strides[new_axes[k]] for every k; "
                       "the offset is self._offset.",
                       "Two tuples, each a comprehension over new_axes, then one return. " + _VIEW])
@_checked("ndarray.permute")
def check_permute(permute: Callable) -> int:
    """Random permutations of random strided views (offsets, steps, negative strides, broadcasts) against numpy."""
    rng = rng_for("ndarray.permute")
    count = 0
    for _ in range(12):
        b, v = random_view(rng)
        axes = tuple(int(i) for i in rng.permutation(v.ndim))
        a = mirror(v, b)
        _expect_view(permute(a, axes), v.transpose(axes), a, f"permute{axes} of {describe(a)}", b)
        count += 1
    return count


# --- broadcast_to -------------------------------------------------------------------------------------------------

@exercise_check("ndarray.broadcast_to", target=f"{ND}:NDArray.broadcast_to",
                hint="a view of this array stretched to the new shape by numpy's broadcasting rule, with no copy; "
                     "an error when the shapes do not broadcast",
                hints=["Line the shapes up at their last axes. An axis whose length stays keeps its stride; a "
                       "length-1 axis stretched longer reads the same element again and again, and so does every new "
                       "axis in front. Any other pair of lengths cannot broadcast.",
                       "extra = len(new_shape) - self.ndim new leading axes get stride 0; then for each old length n, "
                       "old stride s and new length m: s if n == m, 0 if n == 1, otherwise raise ValueError (also "
                       "when extra < 0).",
                       "strides = [0] * extra, then a loop over zip(self.shape, self.strides, new_shape[extra:]) "
                       "that appends one stride per old axis or raises. " + _VIEW])
@_checked("ndarray.broadcast_to")
def check_broadcast_to(broadcast_to: Callable) -> int:
    """Views with length-1 axes broadcast to longer axes and to new leading axes; incompatible shapes must raise."""
    rng = rng_for("ndarray.broadcast_to")
    count = 0
    for k in range(12):
        b, v = random_view(rng, max_ndim=3, broadcast=False)
        ones = rng.random(v.ndim) < 0.5  # make some axes length 1 (one index, kept)
        v = v[tuple(slice(i := int(rng.integers(0, n)), i + 1) if one else slice(None) for n, one in zip(v.shape, ones))]
        new = tuple(int(rng.integers(2, 4)) if n == 1 else n for n in v.shape)
        new = tuple(int(rng.integers(1, 4)) for _ in range(k % 3)) + new
        a = mirror(v, b)
        _expect_view(broadcast_to(a, new), np.broadcast_to(v, new), a, f"broadcast_to{new} of {describe(a)}", b)
        count += 1
    x = _base(rng, (2, 3))
    for v, new in ((x, (2, 4)), (x, (3,)), (x[:, :1], (4, 3))):
        a = mirror(v, x)
        exc = _raises(lambda: broadcast_to(a, new), (Exception,))
        expect(isinstance(exc, (ValueError, AssertionError)),
               f"broadcast_to{new} of shape {a.shape} must raise (ValueError or AssertionError: only a length-1 axis "
               f"can be stretched), but it " + ("returned a result" if exc is None else f"raised {type(exc).__name__}"))
        count += 1
    return count


# --- process_slice ------------------------------------------------------------------------------------------------

@exercise_check("ndarray.process_slice", target=f"{ND}:NDArray.process_slice",
                hint="the same slice with plain int start, stop and step that select exactly the elements Python's "
                     "slicing selects, for steps of either sign",
                hints=["Normalise as Python does: a missing step is 1; a negative bound counts from the end; a bound "
                       "past either end is clipped to what the walk can reach. A missing start or stop is the end "
                       "where the walk starts or finishes, and which end that is depends on the sign of the step.",
                       "With n = self.shape[dim]: a negative bound gets n added. For a positive step, bounds are "
                       "clipped to [0, n], start defaults to 0 and stop to n; for a negative step, bounds are "
                       "clipped to [-1, n - 1], start defaults to n - 1 and stop to -1 (stop before index 0).",
                       "Compute the step first; a small inner function bound(value, default) returns the default for "
                       "None, adds n to a negative value and clips; return slice(bound(sl.start, ...), "
                       "bound(sl.stop, ...), step). Test yours against list(range(n))[sl]."])
@_checked("ndarray.process_slice")
def check_process_slice(process_slice: Callable) -> int:
    """Random slices (None, negative and out-of-range bounds; steps of either sign) on axes of random lengths: the
    returned slice must hold ints and select the same elements as Python's list slicing."""
    rng = rng_for("ndarray.process_slice")
    cases = [(5, slice(None)), (5, slice(-2, None)), (5, slice(None, None, -1)), (5, slice(None, -7, -2)),
             (5, slice(1, 100, 2)), (4, slice(-100, 2))]
    cases += [(n, random_slice(rng, n)) for n in (int(rng.integers(1, 8)) for _ in range(24))]
    for n, sl in cases:
        a = NDArray(np.zeros((2, n), np.float32), device=default_device())
        got = process_slice(a, sl, 1)
        expect(isinstance(got, slice), f"process_slice({sl}, dim 1) on shape {a.shape} must return a slice, "
                                       f"got {type(got).__name__}")
        parts = (got.start, got.stop, got.step)
        expect(all(isinstance(p, (int, np.integer)) for p in parts) and got.step != 0,
               f"process_slice({sl}, dim 1) on shape {a.shape} returned {got}: start, stop and step must all be "
               f"ints (the stride arithmetic needs numbers), and the step cannot be 0")
        want = list(range(n))[sl]
        selected = list(range(got.start, got.stop, got.step))
        expect(selected == want, f"process_slice({sl}, dim 1) on shape {a.shape} returned {got}, which selects "
                                 f"elements {selected}; {sl} selects {want}")
    return len(cases)


# --- __getitem__ --------------------------------------------------------------------------------------------------

def random_index(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[tuple, tuple]:
    """(course index, numpy's keep-dims twin): ints of either sign and slices, sometimes fewer than the axes."""
    ours, theirs = [], []
    for n in shape:
        if rng.random() < 0.25:
            i = int(rng.integers(-n, n))
            ours.append(i)
            theirs.append(slice(i % n, i % n + 1))
        else:
            sl = random_slice(rng, n)
            ours.append(sl)
            theirs.append(sl)
    keep = len(ours) if rng.random() < 0.7 else int(rng.integers(1, len(ours) + 1))
    return tuple(ours[:keep]), tuple(theirs[:keep])


def _show_index(idx: tuple) -> str:
    def one(i: Any) -> str:
        if isinstance(i, slice):
            return ":".join("" if p is None else str(p) for p in (i.start, i.stop)) + \
                ("" if i.step is None else f":{i.step}")
        return "..." if i is Ellipsis else str(i)

    return "[" + ", ".join(one(i) for i in idx) + "]"


@exercise_check("ndarray.__getitem__", target=f"{ND}:NDArray.__getitem__",
                hint="the view an index selects, over the same buffer with no copy; an int index keeps its axis, "
                     "with length 1",
                hints=["as_slices(self, idxs) gives one slice of plain ints per axis. Each axis's slice then changes "
                       "three things, independently of the other axes: where the view starts, how far one step "
                       "moves, and how many elements it keeps.",
                       "For axis k with slice start:stop:step and stride s_k: the offset grows by start * s_k, the "
                       "new stride is step * s_k, the new length is len(range(start, stop, step)).",
                       "offset = self._offset and empty shape and strides lists; a loop over zip(as_slices(self, "
                       "idxs), self.strides) that appends and adds; then one return. " + _VIEW])
@_checked("ndarray.__getitem__")
def check_getitem(getitem: Callable) -> int:
    """Random indices (ints, slices with steps of either sign, fewer indices than axes, `...`) on random strided views
    against numpy with every axis kept; the result must be a view of the same buffer."""
    rng = rng_for("ndarray.__getitem__")
    x = _base(rng, (4, 5))
    cases = [(x, x, (slice(1, 3), slice(None, None, 2)), (slice(1, 3), slice(None, None, 2))),
             (x, x, (slice(None, None, -1), slice(1, None)), (slice(None, None, -1), slice(1, None))),
             (x, x, (2, -1), (slice(2, 3), slice(4, 5))),
             (x, x, (Ellipsis, slice(3, 0, -2)), (Ellipsis, slice(3, 0, -2)))]
    while len(cases) < 24:
        b, v = random_view(rng)
        ours, theirs = random_index(rng, v.shape)
        cases.append((b, v, ours, theirs))
    for b, v, ours, theirs in cases:
        a = mirror(v, b)
        _expect_view(getitem(a, ours), v[theirs], a, f"a{_show_index(ours)} with a: {describe(a)}", b)
    return len(cases)
