"""MNIST in the IDX format (optionally gzip-compressed): a reader, the course's parse_mnist, the Dataset."""
import gzip
import os
import struct
import zlib
from typing import List, Optional, Tuple

import numpy as np

from ..data_basic import Dataset
from ..paths import data_dir
from ..remote import download

__all__ = ["read_idx", "parse_mnist", "MNISTDataset", "mnist_split", "MNIST_TRAIN_SIZE"]

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: The bundled MNIST digits (the 10,000 of the t10k split) are split once, here: first 8,000 train.
MNIST_TRAIN_SIZE = 8000


def _read_bytes(path: os.PathLike) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic; corrupt gzip -> ValueError."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: corrupt or truncated gzip file ({e})") from None


def read_idx(path: os.PathLike) -> np.ndarray:
    """Read an IDX file (magic 0 0 dtype ndim, big-endian uint32 dims, data); ValueError if malformed."""
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (magic bytes {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: IDX data of shape {shape} needs {expected} bytes, file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def parse_mnist(image_filename: str, label_filename: str) -> Tuple[np.ndarray, np.ndarray]:
    """Course hw0 Q2: X float32 (N, 784) scaled to [0, 1] (divided by 255), y uint8 (N,)."""
    images, labels = read_idx(image_filename), read_idx(label_filename)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"parse_mnist: images {images.shape} and labels {labels.shape} do not form a dataset "
            "(expected (N, rows, cols) and (N,))"
        )
    X = images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
    return X, labels.astype(np.uint8)


def mnist_split(full: bool = False) -> Tuple[Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]:
    """MNIST as ((X_train, y_train), (X_test, y_test)) in parse_mnist's format.

    By default the bundled digits (the t10k split), split once here: the first 8,000 train, the last
    2,000 test. `full=True` downloads (once, verified) the real 60,000 / 10,000 split into the cache.
    """
    if full:
        folder = download("mnist")
        return tuple(
            parse_mnist(folder / f"{s}-images-idx3-ubyte.gz", folder / f"{s}-labels-idx1-ubyte.gz") for s in ("train", "t10k")
        )
    folder = data_dir() / "mnist"
    X, y = parse_mnist(folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz")
    n = MNIST_TRAIN_SIZE
    return (X[:n], y[:n]), (X[n:], y[n:])


class MNISTDataset(Dataset):
    """MNIST images (flattened to 784 floats in [0, 1]) and uint8 labels; transforms see 28x28x1 images."""

    def __init__(self, image_filename: str, label_filename: str, transforms: Optional[List] = None):
        super().__init__(transforms)
        self.images, self.labels = parse_mnist(image_filename, label_filename)

    def __getitem__(self, index) -> Tuple[np.ndarray, np.ndarray]:
        images, labels = self.images[index], self.labels[index]
        if self.transforms:
            images = self.apply_transforms_each(images, 1, lambda x: x.reshape(28, 28, 1), lambda x: x.reshape(784))
        return images, labels

    def __len__(self) -> int:
        return len(self.labels)
