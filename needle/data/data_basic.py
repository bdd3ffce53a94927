"""Dataset (indexable samples plus per-sample transforms) and DataLoader (minibatches of Tensors)."""
from typing import Iterator, List, Optional, Tuple

import numpy as np

from ..autograd import Tensor

__all__ = ["Dataset", "DataLoader"]


class Dataset:
    """An indexable collection of samples; subclasses implement __getitem__ and __len__."""

    def __init__(self, transforms: Optional[List] = None):
        self.transforms = transforms

    def __getitem__(self, index) -> object:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def apply_transforms(self, x: np.ndarray) -> np.ndarray:
        """Apply the transforms in order to one sample."""
        for transform in self.transforms or ():
            x = transform(x)
        return x

    def apply_transforms_each(self, samples: np.ndarray, sample_ndim: int, to_hwc, from_hwc) -> np.ndarray:
        """Transform one sample or a batch of them, each seen as an H x W x C image via `to_hwc`.

        `samples` has shape (..., *sample_shape) with `sample_ndim` trailing sample axes; `from_hwc` maps
        a transformed image back to the stored sample layout. The result has the shape of `samples`.
        """
        flat = samples.reshape(-1, *samples.shape[samples.ndim - sample_ndim :])
        out = np.stack([from_hwc(self.apply_transforms(to_hwc(x))) for x in flat])
        return out.reshape(samples.shape)


class DataLoader:
    """Iterates over a dataset in minibatches: tuples of Tensors built from `dataset[batch_indices]`.

    With `shuffle`, every iteration draws a fresh `np.random.permutation(len(dataset))` (the course's
    order of random draws); the last batch may be short. `device`/`dtype` (beyond the course) choose
    where the batch Tensors live and their dtype; None keeps the Tensor defaults. Batches are data, so
    their Tensors do not require grad.

    Sharding for data-parallel training: with `num_replicas` N > 1, this loader yields only shard `rank` of
    every epoch's order, its samples order[rank::N] (the order cut to a multiple of N, so every rank takes as
    many steps); the N shards are disjoint, and batch i of all shards together is batch i of one loader with
    batch size N * batch_size. Every rank must draw the same permutation: seed numpy alike on all ranks.
    """

    def __init__(self, dataset: Dataset, batch_size: Optional[int] = 1, shuffle: bool = False, device=None, dtype=None,
                 num_replicas: int = 1, rank: int = 0):
        if batch_size is None or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"DataLoader: rank must be in [0, num_replicas), got rank {rank!r} of {num_replicas!r}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = device
        self.dtype = dtype
        self.num_replicas = num_replicas
        self.rank = rank
        if not self.shuffle:
            self.ordering = self._split(np.arange(len(dataset)))

    def _split(self, indices: np.ndarray) -> List[np.ndarray]:
        if self.num_replicas > 1:
            indices = indices[: len(indices) - len(indices) % self.num_replicas][self.rank :: self.num_replicas]
        if len(indices) == 0:  # np.array_split would give one empty batch: an empty dataset yields nothing
            return []
        return np.array_split(indices, range(self.batch_size, len(indices), self.batch_size))

    def __iter__(self) -> Iterator[Tuple[Tensor, ...]]:
        if self.shuffle:
            self.ordering = self._split(np.random.permutation(len(self.dataset)))
        for batch_indices in self.ordering:
            yield tuple(
                Tensor(x, device=self.device, dtype=self.dtype, requires_grad=False)
                for x in self.dataset[batch_indices]
            )

    def __len__(self) -> int:
        """Number of batches per epoch (of this rank's shard)."""
        return -(-(len(self.dataset) // self.num_replicas) // self.batch_size)
