"""CIFAR-10 from either of its official layouts: python pickle batches or binary .bin batches."""
import os
import pickle
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from ..data_basic import Dataset
from ..paths import data_dir

__all__ = ["CIFAR10Dataset", "load_cifar10_batch", "CIFAR10_CLASSES"]

#: Label names in label order (as in batches.meta).
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

_RECORD = 1 + 3 * 32 * 32
_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_TEST = ["test_batch"]


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR batch holds (dicts, lists, bytes, numpy arrays); refuses anything else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 writes bytes at pickle protocol 2
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")
        return super().find_class(module, name)


def _load_pickle_batch(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    """A batch is {b"data": uint8 array (N, 3072), b"labels": list of N ints, ...}. Its parts are checked for
    exactly that shape before anything is built from them: a small pickle can reference one list from many
    places, and converting such nesting to an array would build billions of elements."""
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
        if not isinstance(batch, dict):
            raise TypeError(f"the batch is a {type(batch).__name__}, not a dict")
        data, labels = batch[b"data"], batch[b"labels"]
        if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
                and data.shape[1] == _RECORD - 1):
            raise ValueError(f"data must be a uint8 array of shape (N, {_RECORD - 1}), got "
                             f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}")
        if not isinstance(labels, (list, np.ndarray)) or len(labels) != len(data):
            raise ValueError(f"labels must be a list of {len(data)} ints, got {type(labels).__name__}")
        if isinstance(labels, list) and not all(type(v) is int for v in labels):
            raise ValueError("labels must be ints")
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
        labels = labels.astype(np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise ValueError(f"{path}: not a valid CIFAR-10 python batch ({type(e).__name__}: {e})") from None
    return data.reshape(-1, 3, 32, 32), labels


def _load_binary_batch(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % _RECORD:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of {_RECORD}-byte CIFAR-10 records")
    records = raw.reshape(-1, _RECORD)
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)


def load_cifar10_batch(path: os.PathLike) -> Tuple[np.ndarray, np.ndarray]:
    """One batch file as (uint8 images (N, 3, 32, 32), int64 labels (N,)); `.bin` files are binary."""
    path = Path(path)
    images, labels = (_load_binary_batch if path.suffix == ".bin" else _load_pickle_batch)(path)
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: CIFAR-10 labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    return images, labels


def _batch_files(folder: Path, names: List[str]) -> List[Path]:
    """The batch files present in `folder`: the python pickles if any, else the binary `.bin` ones."""
    for suffix in ("", ".bin"):
        found = [folder / (n + suffix) for n in names if (folder / (n + suffix)).is_file()]
        if found:
            return found
    raise FileNotFoundError(f"CIFAR10Dataset: no batches {names} (python or .bin) in {folder}")


class CIFAR10Dataset(Dataset):
    """CIFAR-10 images as float32 (3, 32, 32) arrays in [0, 1] and int labels.

    Reads data_batch_1..5 (train) or test_batch from `base_folder` in the python pickle layout
    (cifar-10-batches-py) or the binary layout (`*.bin`); whichever batches are present are loaded.
    `base_folder=None` reads the bundled subset. `p` is kept for course compatibility (unused there too).
    Transforms see H x W x C images.
    """

    def __init__(self, base_folder: Optional[str] = None, train: bool = True, p: float = 0.5, transforms=None):
        super().__init__(transforms)
        self.base_folder = Path(base_folder) if base_folder is not None else data_dir() / "cifar10"
        self.train = train
        self.p = p
        batches = [load_cifar10_batch(f) for f in _batch_files(self.base_folder, _TRAIN if train else _TEST)]
        self.X = np.concatenate([b[0] for b in batches]).astype(np.float32) / np.float32(255.0)
        self.y = np.concatenate([b[1] for b in batches])

    def __getitem__(self, index) -> Tuple[np.ndarray, np.ndarray]:
        images, labels = self.X[index], self.y[index]
        if self.transforms:
            images = self.apply_transforms_each(images, 3, lambda x: x.transpose(1, 2, 0), lambda x: x.transpose(2, 0, 1))
        return images, labels

    def __len__(self) -> int:
        return len(self.y)
