"""needle.data: bundled files, IDX/MNIST and CIFAR-10 loaders, transforms, datasets and the DataLoader."""
import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import needle.data as data
from needle.data.datasets.mnist_dataset import read_idx

MNIST = data.data_dir() / "mnist"
IMAGES, LABELS = MNIST / "t10k-images-idx3-ubyte.gz", MNIST / "t10k-labels-idx1-ubyte.gz"
CIFAR = data.data_dir() / "cifar10"


def raw_idx(path, header):
    """Independent IDX decoding: gunzip and skip a fixed header."""
    return np.frombuffer(gzip.decompress(Path(path).read_bytes())[header:], dtype=np.uint8)


@pytest.mark.parametrize("folder", ["mnist", "cifar10"])
def test_bundled_files_match_their_checksums(folder):
    data.remote.check_sha256sums(data.data_dir() / folder)


def test_data_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("NEEDLE_DATA_DIR", str(tmp_path))
    assert data.data_dir() == tmp_path
    monkeypatch.setenv("NEEDLE_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="NEEDLE_DATA_DIR"):
        data.data_dir()


# ---------------------------------------------------------------- IDX / MNIST


def test_parse_mnist_matches_raw_bytes():
    X, y = data.parse_mnist(str(IMAGES), str(LABELS))
    assert X.shape == (10000, 784) and X.dtype == np.float32
    assert y.shape == (10000,) and y.dtype == np.uint8
    np.testing.assert_array_equal(X, raw_idx(IMAGES, 16).reshape(10000, 784) / np.float32(255))
    np.testing.assert_array_equal(y, raw_idx(LABELS, 8))
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])


def test_read_idx_uncompressed_and_other_dtypes(tmp_path):
    a = np.arange(24, dtype=">i4").reshape(2, 3, 4)
    path = tmp_path / "a.idx"
    path.write_bytes(bytes([0, 0, 0x0C, 3]) + np.array(a.shape, ">u4").tobytes() + a.tobytes())
    np.testing.assert_array_equal(read_idx(path), a)


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda raw: raw[: len(raw) // 2], "corrupt or truncated gzip"),
        (lambda raw: raw[:100] + bytes(50) + raw[150:], "corrupt or truncated gzip"),
        (lambda raw: gzip.compress(gzip.decompress(raw)[:-7]), "needs 7840000 bytes, file holds 7839993"),
        (lambda raw: gzip.compress(b"\x00\x00\x08\x07" + gzip.decompress(raw)[4:10]), "truncated IDX header"),
        (lambda raw: gzip.compress(b"PK\x03\x04" + gzip.decompress(raw)[4:]), "not an IDX file"),
    ],
)
def test_corrupt_idx_files_give_clear_errors(tmp_path, mangle, message):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(mangle(IMAGES.read_bytes()))
    with pytest.raises(ValueError, match=message):
        data.parse_mnist(str(bad), str(LABELS))


def test_parse_mnist_rejects_mismatched_counts(tmp_path):
    labels = tmp_path / "labels.gz"
    labels.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + np.array([3], ">u4").tobytes() + bytes(3)))
    with pytest.raises(ValueError, match="parse_mnist: images .* and labels"):
        data.parse_mnist(str(IMAGES), str(labels))


def test_mnist_split_is_a_fixed_partition():
    (X_tr, y_tr), (X_te, y_te) = data.mnist_split()
    X, y = data.parse_mnist(str(IMAGES), str(LABELS))
    assert len(X_tr) == data.MNIST_TRAIN_SIZE == 8000 and len(X_te) == 2000
    np.testing.assert_array_equal(np.concatenate([X_tr, X_te]), X)
    np.testing.assert_array_equal(np.concatenate([y_tr, y_te]), y)


def test_mnist_dataset_course_golden_values():
    ds = data.MNISTDataset(str(IMAGES), str(LABELS))  # values from the course's hw2 test on t10k
    idx = [1, 42, 1000, 2000, 3000, 4000, 5000, 5005]
    norms = [np.linalg.norm(ds[i][0]) for i in idx]
    expected = [9.857545, 8.980832, 8.57207, 6.891522, 8.192135, 9.400087, 8.645003, 7.405202]
    np.testing.assert_allclose(norms, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal([ds[i][1] for i in idx], [2, 4, 9, 6, 6, 9, 3, 1])


def test_mnist_dataset_items_and_transforms():
    plain = data.MNISTDataset(str(IMAGES), str(LABELS))
    X, y = data.parse_mnist(str(IMAGES), str(LABELS))
    assert len(plain) == 10000
    x0, y0 = plain[7]
    assert x0.shape == (784,) and y0 == y[7]
    idx = np.array([3, 1, 4, 1, 5])
    np.testing.assert_array_equal(plain[idx][0], X[idx])
    assert plain[2:5][0].shape == (3, 784)

    augmented = data.MNISTDataset(str(IMAGES), str(LABELS), transforms=[data.RandomCrop(2), data.RandomFlipHorizontal()])
    np.random.seed(5)
    got = augmented[idx][0]
    np.random.seed(5)
    for row, i in zip(got, idx):  # per image, in list order: the crop's shifts, then the flip's draw
        img = X[i].reshape(28, 28)
        sx, sy = np.random.randint(-2, 3, size=2)
        expected = np.zeros((28, 28), np.float32)
        src = img[max(sx, 0) : 28 + min(sx, 0), max(sy, 0) : 28 + min(sy, 0)]
        expected[max(-sx, 0) : 28 - max(sx, 0), max(-sy, 0) : 28 - max(sy, 0)] = src
        if np.random.rand() < 0.5:
            expected = expected[:, ::-1]
        np.testing.assert_array_equal(row.reshape(28, 28), expected)


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_full_fashion_mnist_loads():
    images = sorted(FASHION.rglob("train-images-idx3-ubyte*"))[0]
    labels = sorted(FASHION.rglob("train-labels-idx1-ubyte*"))[0]
    ds = data.MNISTDataset(str(images), str(labels))
    assert len(ds) == 60000
    np.testing.assert_array_equal(np.bincount(ds.labels), [6000] * 10)


# ---------------------------------------------------------------- transforms


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 3), padding=st.integers(0, 4), seed=st.integers(0, 999))
def test_random_crop_is_a_shifted_zero_filled_window(h, w, c, padding, seed):
    img = np.random.RandomState(seed).rand(h, w, c)
    np.random.seed(seed)
    got = data.RandomCrop(padding)(img)
    np.random.seed(seed)
    sx, sy = np.random.randint(-padding, padding + 1, size=2)
    assert got.shape == img.shape
    for i in range(h):
        for j in range(w):
            inside = 0 <= i + sx < h and 0 <= j + sy < w
            np.testing.assert_array_equal(got[i, j], img[i + sx, j + sy] if inside else 0)


@pytest.mark.parametrize("seed", range(6))
def test_random_flip_follows_one_rand_draw(seed):
    img = np.random.RandomState(seed).rand(4, 5, 3)
    np.random.seed(seed)
    flip = np.random.rand() < 0.5
    np.random.seed(seed)
    got = data.RandomFlipHorizontal()(img)
    np.testing.assert_array_equal(got, img[:, ::-1, :] if flip else img)
    assert np.random.rand() == pytest.approx(np.random.RandomState(seed).rand(2)[1])  # exactly one draw used


@pytest.mark.parametrize("transform", [data.RandomFlipHorizontal(), data.RandomCrop(2)])
def test_transforms_reject_non_hwc_images(transform):
    with pytest.raises(ValueError, match=type(transform).__name__):
        transform(np.zeros((28, 28)))


# ---------------------------------------------------------------- datasets and DataLoader


def test_ndarray_dataset():
    a, b = np.arange(10), np.arange(20).reshape(10, 2)
    ds = data.NDArrayDataset(a, b)
    assert len(ds) == 10
    x, y = ds[np.array([2, 5])]
    np.testing.assert_array_equal(x, [2, 5])
    np.testing.assert_array_equal(y, b[[2, 5]])
    with pytest.raises(ValueError, match="different lengths"):
        data.NDArrayDataset(a, b[:3])


def test_dataloader_course_shuffle_example():
    np.random.seed(0)
    loader = iter(data.DataLoader(data.NDArrayDataset(np.arange(100)), batch_size=1, shuffle=True))
    first = [next(loader)[0].numpy().item() for _ in range(10)]
    np.testing.assert_array_equal(first, [26, 86, 2, 55, 75, 93, 16, 73, 54, 95])


@pytest.mark.parametrize("batch_size", [1, 7, 10, 100, 130])
def test_dataloader_in_order_batches(batch_size):
    X = np.random.rand(100, 3)
    y = np.arange(100)
    loader = data.DataLoader(data.NDArrayDataset(X, y), batch_size=batch_size)
    batches = list(loader)
    assert len(batches) == len(loader) == -(-100 // batch_size)
    np.testing.assert_allclose(np.concatenate([bx.numpy() for bx, _ in batches]), X, rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate([by.numpy() for _, by in batches]), y)
    assert all(len(by.shape) == 1 for _, by in batches)


def test_dataloader_draws_a_fresh_permutation_every_epoch():
    loader = data.DataLoader(data.NDArrayDataset(np.arange(50)), batch_size=8, shuffle=True)
    np.random.seed(3)
    epochs = [np.concatenate([b[0].numpy() for b in loader]) for _ in range(2)]
    np.random.seed(3)
    np.testing.assert_array_equal(epochs[0], np.random.permutation(50))
    np.testing.assert_array_equal(epochs[1], np.random.permutation(50))
    assert not np.array_equal(epochs[0], epochs[1])


def test_dataloader_device_dtype_and_bad_batch_size():
    import needle as ndl

    ds = data.NDArrayDataset(np.random.rand(10, 2))
    (x,) = next(iter(data.DataLoader(ds, 4, dtype="float64", device=ndl.cpu_numpy())))
    assert x.dtype == "float64" and x.device == ndl.cpu_numpy() and not x.requires_grad
    with pytest.raises(ValueError, match="batch_size"):
        data.DataLoader(ds, 0)


# ---------------------------------------------------------------- CIFAR-10


def test_cifar_bundled_binary_subset():
    train, test = data.CIFAR10Dataset(train=True), data.CIFAR10Dataset(str(CIFAR), train=False)
    assert (len(train), len(test)) == (5000, 1000)
    x, y = train[0]
    assert isinstance(x, np.ndarray) and x.shape == (3, 32, 32) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0, :5] * 255, [59, 43, 50, 68, 98], atol=1e-4)  # training image 0, a frog
    assert y == 6
    np.testing.assert_allclose(test[0][0][:, 0, 0] * 255, [158, 112, 49], atol=1e-4)  # test image 0, a cat
    assert test[0][1] == 3
    np.testing.assert_array_equal(np.bincount(train.y), [500] * 10)
    assert data.CIFAR10_CLASSES == tuple((CIFAR / "batches.meta.txt").read_text().split())
    np.testing.assert_allclose(train.X.mean(axis=(0, 2, 3)) * 255, [125.27, 122.62, 113.31], atol=0.01)
    assert train[np.arange(4)][0].shape == (4, 3, 32, 32)


def write_python_batches(folder: Path, source: Path, names, per_batch: int):
    """Write course-layout pickles (dict with b'data', b'labels') holding records of a .bin file."""
    folder.mkdir(parents=True, exist_ok=True)
    records = np.fromfile(source, np.uint8).reshape(-1, 3073)
    for k, name in enumerate(names):
        part = records[k * per_batch : (k + 1) * per_batch]
        batch = {b"batch_label": name.encode(), b"labels": [int(v) for v in part[:, 0]], b"data": part[:, 1:].copy()}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return records


def test_cifar_python_pickle_layout_equals_binary(tmp_path):
    records = write_python_batches(tmp_path, CIFAR / "data_batch_1.bin", ["data_batch_1", "data_batch_2"], 300)
    ds = data.CIFAR10Dataset(str(tmp_path), train=True)
    assert len(ds) == 600
    np.testing.assert_array_equal(ds.X, records[:600, 1:].reshape(-1, 3, 32, 32) / np.float32(255))
    np.testing.assert_array_equal(ds.y, records[:600, 0])
    (tmp_path / "data_batch_1.bin").write_bytes(b"junk")  # both layouts present: the python batches win
    assert len(data.CIFAR10Dataset(str(tmp_path), train=True)) == 600


def test_cifar_transforms_see_hwc_images():
    ds = data.CIFAR10Dataset(train=False, transforms=[data.RandomFlipHorizontal(p=1.0)])
    plain = data.CIFAR10Dataset(train=False)
    np.testing.assert_array_equal(ds[3][0], plain[3][0][:, :, ::-1])
    np.testing.assert_array_equal(ds[:2][0], plain[:2][0][..., ::-1])


class Evil:
    def __reduce__(self):
        import os

        return (os.getcwd, ())


@pytest.mark.parametrize(
    "name, content, error, message",
    [
        ("test_batch.bin", lambda: (CIFAR / "test_batch.bin").read_bytes()[:-100], ValueError, "whole number of 3073-byte"),
        ("test_batch.bin", lambda: bytes([12]) + bytes(3072), ValueError, r"labels must lie in 0\.\.9"),
        ("test_batch", lambda: pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2]})[:-20], ValueError, "not a valid CIFAR-10 python batch"),
        ("test_batch", lambda: pickle.dumps({b"data": Evil(), b"labels": []}), ValueError, "refusing to load posix.getcwd"),
        ("test_batch", lambda: pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}), ValueError, r"data must be a uint8 array of shape \(N, 3072\), got uint8 \(2, 100\)"),
    ],
)
def test_cifar_corrupt_files_give_clear_errors(tmp_path, name, content, error, message):
    (tmp_path / name).write_bytes(content())
    with pytest.raises(error, match=message):
        data.CIFAR10Dataset(str(tmp_path), train=False)


def test_cifar_missing_batches(tmp_path):
    with pytest.raises(FileNotFoundError, match="no batches"):
        data.CIFAR10Dataset(str(tmp_path), train=True)


def test_dataloader_over_cifar():
    ds = data.CIFAR10Dataset(train=False)
    X, y = next(iter(data.DataLoader(ds, batch_size=64, shuffle=False)))
    assert X.shape == (64, 3, 32, 32) and y.shape == (64,) and X.dtype == "float32"
    np.testing.assert_array_equal(X.numpy(), ds.X[:64])
    np.testing.assert_array_equal(y.numpy(), ds.y[:64])
