"""Chapter 00 (welcome): the sigmoid warm-up exercise."""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from ..cases import random_shape, rng_for, strided
from ..compare import expect, expect_close
from ..registry import exercise_check, set_hints


def _sigmoid64(x: np.ndarray) -> np.ndarray:
    """The expected values, in float64 (written independently of the reference library function)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


@exercise_check("welcome.sigmoid", target="needle.course.warmup:sigmoid",
                hint="sigmoid(x) = 1 / (1 + exp(-x)); for x < 0 use exp(x) / (1 + exp(x)) so exp never overflows")
def check_sigmoid(sigmoid: Callable[[np.ndarray], np.ndarray]) -> int:
    rng = rng_for("welcome.sigmoid")
    cases = 0
    for dtype in (np.float64, np.float32):
        for _ in range(4):
            x = (rng.standard_normal(random_shape(rng)) * 4).astype(dtype)
            for view in (x, strided(x)):
                got = sigmoid(view)
                expect_close(got, _sigmoid64(view), what="sigmoid(x)", inputs={"x": view},
                             rtol=1e-5 if dtype == np.float32 else 1e-10)
                expect(np.asarray(got).dtype == dtype, f"sigmoid of a {np.dtype(dtype)} array returned {np.asarray(got).dtype}")
                cases += 1
    extreme = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            got = sigmoid(extreme)
        except RuntimeWarning as w:
            expect(False, f"sigmoid(x) warned '{w}' for x = {extreme.tolist()}: exp overflowed; compute exp(-|x|) instead")
    expect_close(got, _sigmoid64(extreme), what="sigmoid of large |x|", inputs={"x": extreme}, rtol=1e-12, atol=0)
    return cases + 1


set_hints({
    "welcome.sigmoid": (
        "the logistic function 1 / (1 + e^(-x)), elementwise, same shape and dtype as x, with no overflow warning "
        "for large |x|",
        ["The formula is in the text above. The catch: for x = -1000, e^(-x) overflows. Find a form of the same "
         "function in which exp only ever sees a number <= 0.",
         "Let z = e^(-|x|), which is in (0, 1]. For x >= 0 the sigmoid is 1 / (1 + z); for x < 0 it is z / (1 + z) "
         "(multiply the top and bottom of 1 / (1 + e^(-x)) by e^x).",
         "Compute z with np.exp and np.abs, then pick between the two forms elementwise with np.where(x >= 0, ..., ...)."
         " Integer arithmetic on a float32 array keeps float32."]),
})
