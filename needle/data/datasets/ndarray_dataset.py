"""A dataset over in-memory arrays that share their first dimension."""
from typing import Tuple

import numpy as np

from ..data_basic import Dataset

__all__ = ["NDArrayDataset"]


class NDArrayDataset(Dataset):
    """`dataset[i]` is the tuple `(a[i] for a in arrays)`; i may be an int, a slice or an index array."""

    def __init__(self, *arrays: np.ndarray):
        super().__init__()
        if not arrays:
            raise ValueError("NDArrayDataset: needs at least one array")
        lengths = [len(a) for a in arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"NDArrayDataset: arrays have different lengths {lengths}")
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, i) -> Tuple[np.ndarray, ...]:
        return tuple(a[i] for a in self.arrays)
