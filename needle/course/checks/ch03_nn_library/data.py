"""Chapter 03, Q4: the transforms, MNISTDataset and DataLoader against numpy on the bundled digits."""
from __future__ import annotations


import numpy as np

import needle as ndl

from ...cases import rng_for
from ...compare import expect, expect_close
from ...registry import exercise_check
from .common import DATA, TOL, mnist_files


def _images(name: str) -> list[np.ndarray]:
    rng = rng_for(name)
    return [rng.standard_normal(shape) for shape in ((4, 5, 1), (6, 6, 3), (3, 7, 2))]


@exercise_check("nn_library.RandomFlipHorizontal", target=f"{DATA}.data_transforms:RandomFlipHorizontal",
                hint="flip_img = np.random.rand() < self.p (one draw); flip the W axis: img[:, ::-1, :]")
def check_flip(Flip: type) -> int:
    cases = 0
    for p in (0.5, 0.2, 1.0):
        for seed, img in enumerate(_images("nn_library.RandomFlipHorizontal")):
            np.random.seed(seed)
            want = img[:, ::-1, :] if np.random.rand() < p else img
            np.random.seed(seed)
            expect_close(Flip(p)(img), want, what=f"RandomFlipHorizontal({p}) with seed {seed}", inputs={"img": img})
            cases += 1
    return cases


def _crop64(img: np.ndarray, padding: int) -> np.ndarray:
    """The zero-padded window shifted by one randint(-padding, padding + 1, size=2) draw, without np.pad."""
    sx, sy = np.random.randint(low=-padding, high=padding + 1, size=2)
    h, w = img.shape[:2]
    out = np.zeros_like(img)
    rows, cols = slice(max(-sx, 0), h - max(sx, 0)), slice(max(-sy, 0), w - max(sy, 0))
    out[rows, cols] = img[max(sx, 0):h + min(sx, 0), max(sy, 0):w + min(sy, 0)]
    return out


@exercise_check("nn_library.RandomCrop", target=f"{DATA}.data_transforms:RandomCrop",
                hint="shift_x, shift_y = np.random.randint(-p, p + 1, size=2); zero-pad H and W by p; take the H x W "
                     "window starting at row p + shift_x, column p + shift_y")
def check_crop(Crop: type) -> int:
    cases = 0
    for padding in (1, 3):
        for seed, img in enumerate(_images("nn_library.RandomCrop")):
            for s in range(3):
                np.random.seed(10 * seed + s)
                want = _crop64(img, padding)
                np.random.seed(10 * seed + s)
                expect_close(Crop(padding)(img), want, what=f"RandomCrop({padding}) with seed {10 * seed + s}",
                             inputs={"img": img})
                cases += 1
    return cases


@exercise_check("nn_library.MNISTDataset", target=f"{DATA}.datasets.mnist_dataset:MNISTDataset",
                hint="__init__: parse_mnist the two files; __getitem__: (images[index], labels[index]), each image "
                     "reshaped to 28x28x1 for apply_transforms and back to 784; __len__: the number of labels")
def check_mnist_dataset(MNISTDataset: type) -> int:
    ds = MNISTDataset(*mnist_files())
    expect(len(ds) == 10000, f"len(MNISTDataset(t10k)) should be 10000, got {len(ds)}")
    idx = [1, 42, 1000, 2000, 3000, 4000, 5000, 5005]
    expect_close([np.linalg.norm(ds[i][0]) for i in idx],
                 [9.857545, 8.980832, 8.57207, 6.891522, 8.192135, 9.400087, 8.645003, 7.405202],
                 what="norms of t10k images 1, 42, 1000, ... (course golden values: pixels / 255)", **TOL)
    expect_close([ds[i][1] for i in idx], [2, 4, 9, 6, 6, 9, 3, 1], what="t10k labels (course golden values)")
    X, y = ds[np.array([3, 1, 4])]
    expect(np.shape(X) == (3, 784) and np.shape(y) == (3,), f"ds[index array of 3] should give images (3, 784) and "
                                                            f"labels (3,), got {np.shape(X)}, {np.shape(y)}")
    flipped = MNISTDataset(*mnist_files(), transforms=[ndl.data.RandomFlipHorizontal(1.0)])
    got = np.asarray(flipped[7][0]).reshape(28, 28)
    expect_close(got, np.asarray(ds[7][0]).reshape(28, 28)[:, ::-1],
                 what="MNISTDataset with RandomFlipHorizontal(1.0): transforms see 28x28x1 images")
    return 5


@exercise_check("nn_library.DataLoader", target=f"{DATA}.data_basic:DataLoader",
                hint="__iter__: if shuffle, self.ordering = np.array_split(np.random.permutation(len(dataset)), "
                     "range(batch_size, len, batch_size)); yield tuple(Tensor(a) for a in dataset[batch_indices])")
def check_dataloader(DataLoader: type) -> int:
    np.random.seed(0)
    loader = iter(DataLoader(ndl.data.NDArrayDataset(np.arange(100)), batch_size=1, shuffle=True))
    first = [next(loader)[0].numpy().item() for _ in range(10)]
    expect_close(first, [26, 86, 2, 55, 75, 93, 16, 73, 54, 95],
                 what="first 10 items, seed 0, shuffle=True, batch_size=1 (course golden: np.random.permutation(100))")
    X, y = rng_for("nn_library.DataLoader").standard_normal((23, 3)), np.arange(23)
    for batch_size in (5, 23, 30):
        batches = list(DataLoader(ndl.data.NDArrayDataset(X, y), batch_size=batch_size))
        expect(all(isinstance(t, ndl.Tensor) for b in batches for t in b), "each batch must be a tuple of Tensors")
        expect([len(b[1].numpy()) for b in batches] == [len(c) for c in np.array_split(y, range(batch_size, 23, batch_size))],
               f"batch_size={batch_size}, 23 samples: wrong batch sizes {[len(b[1].numpy()) for b in batches]}")
        expect_close(np.concatenate([b[0].numpy() for b in batches]), X, what=f"in-order batches (batch_size={batch_size})",
                     rtol=1e-6, atol=1e-6)
    loader = DataLoader(ndl.data.NDArrayDataset(np.arange(20)), batch_size=6, shuffle=True)
    np.random.seed(3)
    epochs = [np.concatenate([b[0].numpy() for b in loader]) for _ in range(2)]
    np.random.seed(3)
    expect_close(epochs, [np.random.permutation(20), np.random.permutation(20)],
                 what="two epochs with shuffle=True: a fresh np.random.permutation at every iter()")
    return 5
