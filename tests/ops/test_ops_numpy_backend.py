"""NEEDLE_BACKEND=np: the op, conv, autograd and init tests again, with plain numpy arrays as the backend.

The backend is chosen at import time, so these run in a fresh interpreter with the variable set.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from needle.backend_selection import BACKEND

TESTS = Path(__file__).resolve().parents[1]
FILES = ["ops/test_ops.py", "ops/test_ops_conv.py", "ops/test_ops_fused.py", "ops/test_autograd.py", "nn/test_init.py"]


@pytest.mark.skipif(BACKEND == "np", reason="already running with NEEDLE_BACKEND=np")
def test_op_suite_passes_on_numpy_backend():
    env = dict(os.environ, NEEDLE_BACKEND="np")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *[str(TESTS / f) for f in FILES]]
    result = subprocess.run(cmd, cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=300)
    tail = result.stdout[-3000:] + result.stderr[-2000:]
    assert result.returncode == 0, tail
    assert " passed" in result.stdout, tail


def test_numpy_backend_uses_numpy_arrays():
    code = (
        "import numpy as np, needle as ndl\n"
        "t = ndl.Tensor(np.ones((2, 3)))\n"
        "assert ndl.BACKEND == 'np' and isinstance(t.realize_cached_data(), np.ndarray)\n"
        "assert t.dtype == np.float64 and str(t.device) == 'needle.cpu()'\n"
        "y = ndl.conv(ndl.Tensor(np.ones((1, 4, 4, 2))), ndl.Tensor(np.ones((3, 3, 2, 1))))\n"
        "assert isinstance(y.realize_cached_data(), np.ndarray) and y.shape == (1, 4, 4, 1)\n"
        "print('ok')\n"
    )
    env = dict(os.environ, NEEDLE_BACKEND="np")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]
