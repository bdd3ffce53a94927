"""Chapter 03, Q1: the initialisers (Xavier and Kaiming, uniform and normal) against the course's draws."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np


from ...compare import expect, expect_close
from ...registry import exercise_check
from .common import INIT, tensor_out


def _init_check(name: str, uniform: bool, bound: Callable[..., float], cases: list[tuple]) -> Callable:
    """A check: with the same seed, the learner's initialiser equals one numpy draw of shape (fan_in, fan_out)
    scaled by the formula's bound (U(-a, a) or N(0, std^2)); dtype and requires_grad are forwarded as kwargs."""

    def check(fn: Callable) -> int:
        for seed, (args, kwargs) in enumerate(cases):
            fan_in, fan_out = args[:2]
            np.random.seed(seed)
            draw = np.random.rand(fan_in, fan_out) if uniform else np.random.randn(fan_in, fan_out)
            b = bound(*args, **kwargs)
            want = (draw * 2 * b - b) if uniform else draw * b
            np.random.seed(seed)
            got = fn(*args, **kwargs)
            what = f"{name}{args}" + (f" with {kwargs}" if kwargs else "")
            expect_close(tensor_out(got, what), want, what=f"{what} (seed {seed})", rtol=1e-5, atol=1e-6)
            expect(str(got.dtype) == "float32", f"{what} should be float32, got {got.dtype}")
        np.random.seed(0)
        got = fn(4, 3, dtype="float64", requires_grad=True)
        expect(str(got.dtype) == "float64" and got.requires_grad,
               f"{name}(4, 3, dtype='float64', requires_grad=True): pass **kwargs on to init.rand/randn "
               f"(got dtype {got.dtype}, requires_grad {got.requires_grad})")
        return len(cases) + 1

    return check


_FAN_CASES = [((5, 8), {}), ((3, 1), {}), ((100, 20), {})]
_INITS = [
    ("xavier_uniform", True, lambda i, o, gain=1.0: gain * math.sqrt(6 / (i + o)),
     _FAN_CASES + [((5, 8), {"gain": 1.5})], "rand(fan_in, fan_out, low=-a, high=a, **kwargs), a = gain*sqrt(6/(fan_in+fan_out))"),
    ("xavier_normal", False, lambda i, o, gain=1.0: gain * math.sqrt(2 / (i + o)),
     _FAN_CASES + [((5, 8), {"gain": 0.5})], "randn(fan_in, fan_out, std=gain*sqrt(2/(fan_in+fan_out)), **kwargs)"),
    ("kaiming_uniform", True, lambda i, o: math.sqrt(2) * math.sqrt(3 / i),
     _FAN_CASES, "rand(fan_in, fan_out, low=-b, high=b, **kwargs), b = sqrt(2)*sqrt(3/fan_in)"),
    ("kaiming_normal", False, lambda i, o: math.sqrt(2) / math.sqrt(i),
     _FAN_CASES, "randn(fan_in, fan_out, std=sqrt(2)/sqrt(fan_in), **kwargs)"),
]
for _name, _uniform, _bound, _cases, _hint in _INITS:
    exercise_check(f"nn_library.{_name}", target=f"{INIT}:{_name}", hint=_hint)(
        _init_check(_name, _uniform, _bound, _cases))
