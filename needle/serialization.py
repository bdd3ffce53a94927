"""needle.save / needle.load: parameters and buffers as a numpy .npz archive (no pickle), written atomically."""
from __future__ import annotations

import os
import tempfile
from typing import Mapping, Union

import numpy as np

__all__ = ["save", "load"]

PathLike = Union[str, os.PathLike]


def _arrays(obj) -> dict[str, np.ndarray]:
    """The named arrays to store: a Module's state_dict(), or a mapping of names to Tensors/arrays."""
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: expected a Module or a mapping of names to arrays, got {type(obj).__name__}")
    out = {}
    for name, value in obj.items():
        if not isinstance(name, str):
            raise TypeError(f"save: keys must be strings, got {name!r}")
        arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
        if arr.dtype == object:
            raise TypeError(f"save: '{name}' is not a numeric array (no pickle is written)")
        out[name] = arr
    return out


def save(obj, path: PathLike) -> None:
    """Writes obj (a Module or a {name: Tensor/array} mapping) to `path` as .npz.
    The file is written to a temporary name in the same folder and renamed, so a crash never leaves
    a half-written archive under `path`."""
    arrays = _arrays(obj)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".needle-", suffix=".npz.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path: PathLike, model=None) -> dict[str, np.ndarray]:
    """Reads an archive written by save() (pickle is refused) and returns {name: numpy array}; with
    `model`, also loads it into the model (strict: missing/unexpected keys or shapes raise)."""
    with np.load(os.fspath(path), allow_pickle=False) as archive:
        state = {name: archive[name] for name in archive.files}
    if model is not None:
        model.load_state_dict(state)
    return state
