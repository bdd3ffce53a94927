"""MNIST in the IDX format (optionally gzip-compressed): a reader, the course's parse_mnist, the Dataset."""
import gzip
import math
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


#: Deflate cannot compress better than about 1032:1; a gzip file declaring more data than that is lying.
_MAX_GZIP_RATIO = 1100


def _corrupt(path, err) -> ValueError:
    return ValueError(f"{path}: corrupt or truncated gzip file ({err})")


def read_idx(path: os.PathLike) -> np.ndarray:
    """Read an IDX file (magic 0 0 dtype ndim, big-endian uint32 dims, data), gzip-compressed or not.

    The header is read first and the size it declares checked against the file (for a .gz, against what its
    compressed size can hold) before the data is read, and a .gz is decompressed no further than the declared
    size: a malformed or hostile file raises ValueError before it costs memory or time."""
    file_size = os.path.getsize(path)
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
        f.seek(0)
        stream = gzip.GzipFile(fileobj=f, mode="rb") if compressed else f
        limit = file_size * _MAX_GZIP_RATIO if compressed else file_size

        def read(n: int) -> bytes:
            try:
                return stream.read(n)
            except (OSError, EOFError, zlib.error) as e:
                raise _corrupt(path, e) from None

        magic = read(4)
        if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _IDX_DTYPES:
            raise ValueError(f"{path}: not an IDX file (magic bytes {magic.hex()})")
        ndim = magic[3]
        dims = read(4 * ndim)
        if len(dims) < 4 * ndim:
            raise ValueError(f"{path}: truncated IDX header")
        shape = struct.unpack(f">{ndim}I", dims)
        dtype = np.dtype(_IDX_DTYPES[magic[2]])
        expected = math.prod(shape) * dtype.itemsize
        if expected > limit:
            raise ValueError(f"{path}: IDX header declares shape {shape} ({expected} bytes), more than a "
                             f"{file_size}-byte {'gzip ' if compressed else ''}file can hold")
        data = read(expected + 1)  # one byte more: trailing data is an error too
        if len(data) != expected:
            raise ValueError(f"{path}: IDX data of shape {shape} needs {expected} bytes, file holds "
                             f"{len(data) if len(data) <= expected else 'more'}")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def parse_mnist(image_filename: str, label_filename: str) -> Tuple[np.ndarray, np.ndarray]:
    """Course hw0 Q2: X float32 (N, 784) scaled to [0, 1] (divided by 255), y uint8 (N,)."""
    images, labels = read_idx(image_filename), read_idx(label_filename)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"parse_mnist: images {images.shape} and labels {labels.shape} do not form a dataset "
            "(expected (N, rows, cols) and (N,))"
        )
    if labels.dtype != np.uint8:
        raise ValueError(f"{label_filename}: MNIST labels must be unsigned bytes (IDX type 0x08), got {labels.dtype}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{label_filename}: MNIST labels must lie in 0..9, found {int(labels.max())}")
    if images.size and not (np.all(np.isfinite(images)) and images.min() >= 0 and images.max() <= 255):
        raise ValueError(f"{image_filename}: MNIST pixel values must lie in 0..255 (they are divided by 255), found "
                         f"values from {images.min()} to {images.max()}")
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
