"""What every chapter 03 check module shares: where the exercises live, the tolerance, a Tensor-output guard."""
from __future__ import annotations

from typing import Any

import numpy as np

import needle as ndl

from ...compare import expect

INIT = "needle.init.init_initializers"
NN = "needle.nn.nn_basic"
LOG = "needle.ops.ops_logarithmic"
DATA = "needle.data"
APP = "needle.apps.mlp_resnet"
TOL = dict(rtol=1e-5, atol=1e-5)


def tensor_out(value: Any, what: str) -> np.ndarray:
    """The numpy value of a learner's result, which must be a needle Tensor."""
    expect(isinstance(value, ndl.Tensor), f"{what} must return a needle Tensor, got {type(value).__name__}")
    return value.numpy()


def mnist_files() -> tuple[str, str]:
    """The bundled MNIST test split's image and label files (the course's golden values are computed on them)."""
    folder = ndl.data.data_dir() / "mnist"
    return str(folder / "t10k-images-idx3-ubyte.gz"), str(folder / "t10k-labels-idx1-ubyte.gz")
