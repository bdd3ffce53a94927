"""Issue 12's hardening items outside the device fuzzer and the installs: views and offsets, backward's out_grad,
logsumexp with infinities, MNIST/CIFAR/npz files that lie about their sizes, ndl.save's file semantics,
train_mnist's data_dir, one_hot, an empty DataLoader, get_batch's index."""
import gzip
import os
import pickle
import resource
import stat
import struct
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import needle as ndl
import needle.backend_ndarray as nd
from needle import data
from needle.data.datasets.mnist_dataset import read_idx

DEVICES = [d for d in (nd.cpu(), nd.cuda_sim(), nd.cpu_numpy()) if d.enabled()]


def run_limited(code: str, max_rss_mb: int = 400, timeout: float = 60):
    """Runs code in a child whose address space is capped: a loader that allocates what a hostile file declares
    dies there with MemoryError instead of passing."""
    prog = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({max_rss_mb << 20}, {max_rss_mb << 20}))\n"
            + code)
    return subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})


# ---------------------------------------------------------------- views, backward, logsumexp


@pytest.mark.parametrize("device", DEVICES, ids=str)
def test_is_compact_sees_the_offset(device):
    base = nd.array(np.arange(10, dtype=np.float32), device=device)
    view = nd.NDArray.make((5,), (1,), device, base._handle, offset=5)
    assert not view.is_compact()
    np.testing.assert_array_equal((view + 1).numpy(), np.arange(5, 10) + 1)
    np.testing.assert_array_equal(view.compact().numpy(), np.arange(5, 10))
    whole = nd.NDArray.make((10,), (1,), device, base._handle, offset=5)  # reaches past the buffer
    assert not whole.is_compact()
    with pytest.raises((ValueError, IndexError)):
        whole + 1


@pytest.mark.parametrize("device", [d for d in DEVICES if d.name != "cuda"], ids=str)
def test_numpy_view_refuses_views_whose_writes_would_be_lost(device):
    a = nd.array(np.arange(12, dtype=np.float32).reshape(3, 4), device=device)
    v = a.numpy_view()
    v[0, 0] = 100
    assert a.numpy()[0, 0] == 100  # writes go through
    for view in (a.permute((1, 0)), a[1:, :], a[:, ::2], a.broadcast_to((2, 3, 4)) if False else a[::2]):
        with pytest.raises(ValueError, match="not compact"):
            view.numpy_view()
    a[1:, :].compact().numpy_view()  # a compact copy is fine


def test_backward_checks_the_shape_of_out_grad():
    x = ndl.Tensor(np.ones((2, 3)))
    y = x * 2
    with pytest.raises(ValueError, match=r"out_grad has shape \(3,\), the tensor has shape \(2, 3\)"):
        y.backward(ndl.Tensor(np.ones(3)))
    with pytest.raises(ValueError, match="shape"):
        y.backward(ndl.Tensor(np.ones((3, 2))))
    with pytest.raises(TypeError):
        y.backward(np.ones((2, 3)))
    y.backward(ndl.Tensor(np.full((2, 3), 2.0)))
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 4.0))


@pytest.mark.parametrize("device", DEVICES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logsumexp_with_infinities_matches_scipy(device, dtype):
    z = np.array([[-np.inf, -np.inf, -np.inf], [1.0, np.inf, 2.0], [-np.inf, 0.0, 1.0], [1e30, 1e30, -1e30],
                  [np.inf, np.inf, -np.inf]], dtype=dtype)
    got = ndl.ops.logsumexp(ndl.Tensor(z, device=device, dtype=dtype), axes=(1,)).numpy()
    with np.errstate(all="ignore"):
        m = np.max(z, axis=1, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)
        expected = (np.log(np.sum(np.exp(z - m), axis=1, keepdims=True)) + m)[:, 0]
    assert got[0] == -np.inf and got[1] == np.inf and got[4] == np.inf
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    whole = ndl.ops.logsumexp(ndl.Tensor(z[:1], device=device, dtype=dtype)).numpy()
    assert whole == -np.inf


# ---------------------------------------------------------------- MNIST files


def write_idx(path, array, code=0x08, gz=True, shape=None):
    shape = array.shape if shape is None else shape
    raw = bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


@pytest.mark.parametrize("labels, code, message", [
    (np.array([1, 2, 10], np.uint8), 0x08, r"labels must lie in 0\.\.9, found 10"),
    (np.array([1, 2, 255], np.uint8), 0x08, r"0\.\.9"),
    (np.array([1, 2, 300], ">i2"), 0x0B, r"unsigned bytes \(IDX type 0x08\), got >i2"),
    (np.array([1, 2, 3], ">i4"), 0x0C, r"unsigned bytes"),
    (np.array([1, 2, -3], np.int8), 0x09, r"unsigned bytes"),
])
def test_mnist_labels_out_of_range_or_of_the_wrong_type_raise_naming_the_file(tmp_path, labels, code, message):
    images = write_idx(tmp_path / "images.gz", np.zeros((3, 28, 28), np.uint8))
    bad = write_idx(tmp_path / "labels.gz", labels, code)
    with pytest.raises(ValueError, match=message) as info:
        data.parse_mnist(str(images), str(bad))
    assert "labels.gz" in str(info.value)


@pytest.mark.parametrize("pixels, code", [(np.array([0, 256, 3], ">i2"), 0x0B), (np.array([0, -1, 3], np.int8), 0x09),
                                          (np.array([0, np.nan, 3], ">f4"), 0x0D), (np.array([0, 1e9, 3], ">f8"), 0x0E)])
def test_mnist_pixels_outside_0_255_raise_naming_the_file(tmp_path, pixels, code):
    images = write_idx(tmp_path / "images.gz", pixels.reshape(1, 1, 3), code)
    labels = write_idx(tmp_path / "labels.gz", np.array([1], np.uint8))
    with pytest.raises(ValueError, match=r"images\.gz: MNIST pixel values must lie in 0\.\.255"):
        data.parse_mnist(str(images), str(labels))


def test_a_gzip_bomb_is_rejected_before_it_is_decompressed(tmp_path):
    """A header declaring a few bytes followed by a gigabyte of zeros (0.6 MB compressed)."""
    path = tmp_path / "bomb.gz"
    header = bytes([0, 0, 8, 1]) + struct.pack(">I", 4)
    comp = zlib_stream(header + bytes(4), zeros=1 << 30)
    path.write_bytes(comp)
    assert path.stat().st_size < 2 << 20
    proc = run_limited(f"from needle.data.datasets.mnist_dataset import read_idx\n"
                       f"import time; t = time.time()\n"
                       f"try:\n    read_idx({str(path)!r})\nexcept ValueError as e:\n    print('REJECTED', e)\n"
                       f"print('SECONDS', time.time() - t)\n")
    assert "REJECTED" in proc.stdout, proc.stderr[-2000:]
    assert float(proc.stdout.split("SECONDS")[1]) < 5


def zlib_stream(prefix: bytes, zeros: int) -> bytes:
    """gzip of prefix + `zeros` zero bytes, compressed chunk by chunk (never holding the whole)."""
    import zlib

    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [c.compress(prefix)]
    chunk = bytes(1 << 20)
    for _ in range(zeros >> 20):
        out.append(c.compress(chunk))
    out.append(c.flush())
    return b"".join(out)


@pytest.mark.parametrize("gz", [True, False])
def test_an_idx_header_declaring_more_than_the_file_holds_is_rejected_cheaply(tmp_path, gz):
    path = write_idx(tmp_path / "big", np.zeros(16, np.uint8), 0x08, gz=gz, shape=(60000, 28, 28 * 50))
    proc = run_limited(f"from needle.data.datasets.mnist_dataset import read_idx\n"
                       f"try:\n    read_idx({str(path)!r})\nexcept ValueError as e:\n    print('REJECTED', e)\n",
                       max_rss_mb=300)
    assert "REJECTED" in proc.stdout and "more than a" in proc.stdout, proc.stderr[-2000:]


def test_idx_trailing_data_is_rejected(tmp_path):
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + b"\1\2\3"))
    with pytest.raises(ValueError, match="needs 2 bytes"):
        read_idx(path)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "ok.gz", np.array([1, 2], np.uint8))), [1, 2])


# ---------------------------------------------------------------- CIFAR pickles


def test_a_cifar_pickle_of_shared_nested_lists_is_rejected_before_it_is_built(tmp_path):
    """A 7 KB pickle whose labels are a list referencing one list many times (np.asarray would build 10^10 ints)."""
    inner = [1] * 100
    for _ in range(4):
        inner = [inner] * 100
    blob = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": inner}, protocol=2)
    assert len(blob) < 20000
    (tmp_path / "test_batch").write_bytes(blob)
    proc = run_limited(f"import needle.data as data\ntry:\n    data.CIFAR10Dataset({str(tmp_path)!r}, train=False)\n"
                       f"except ValueError as e:\n    print('REJECTED', e)\n")
    assert "REJECTED" in proc.stdout, proc.stderr[-2000:]


def test_a_cifar_pickle_with_an_object_array_is_rejected(tmp_path):
    blob = pickle.dumps({b"data": np.zeros((2, 3072), object), b"labels": [1, 2]}, protocol=2)
    (tmp_path / "test_batch").write_bytes(blob)
    with pytest.raises(ValueError, match="not a valid CIFAR-10 python batch"):
        data.CIFAR10Dataset(str(tmp_path), train=False)


# ---------------------------------------------------------------- npz archives and ndl.save


def npz_with_lying_header(path, declared_shape, real=np.zeros(4, np.float32), compress=zipfile.ZIP_STORED):
    header = np.lib.format.header_data_from_array_1_0(real)
    header["shape"] = declared_shape
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    buf.write(real.tobytes())
    with zipfile.ZipFile(path, "w", compress) as zf:
        zf.writestr("w.npy", buf.getvalue())
    return path


@pytest.mark.parametrize("compress", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_an_npz_member_declaring_more_than_it_holds_is_rejected_before_allocation(tmp_path, compress):
    path = npz_with_lying_header(tmp_path / "lie.npz", (400_000_000,), compress=compress)
    proc = run_limited(f"import needle as ndl\ntry:\n    ndl.load({str(path)!r})\nexcept ValueError as e:\n"
                       f"    print('REJECTED', e)\n", max_rss_mb=1000)
    assert "REJECTED" in proc.stdout and "declares shape" in proc.stdout, proc.stderr[-2000:]


def test_an_npz_decompression_bomb_is_rejected(tmp_path):
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("w.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False, "shape": (1 << 28,)})
            chunk = bytes(1 << 22)
            for _ in range((1 << 30) // len(chunk)):
                member.write(chunk)
    assert path.stat().st_size < 3 << 20
    t = time.time()
    with pytest.raises(ValueError, match="decompression bomb"):
        ndl.load(path)
    assert time.time() - t < 5
    with pytest.raises(ValueError, match="max_bytes"):
        ndl.load(npz_with_lying_header(tmp_path / "ok.npz", (4,)), max_bytes=8)
    np.testing.assert_array_equal(ndl.load(tmp_path / "ok.npz")["w"], np.zeros(4))


def test_save_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "m.npz"
    ndl.save({"w": np.ones(3)}, path)
    os.chmod(path, 0o640)
    ndl.save({"w": np.zeros(3)}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    np.testing.assert_array_equal(ndl.load(path)["w"], np.zeros(3))
    fresh = tmp_path / "fresh.npz"
    ndl.save({"w": np.ones(3)}, fresh)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask  # as open() would create it, not mkstemp's 0600


def test_save_writes_through_a_symlink(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "m.npz"
    ndl.save({"w": np.ones(3)}, target)
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    ndl.save({"w": np.full(3, 7.0)}, link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_array_equal(ndl.load(target)["w"], np.full(3, 7.0))
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(tmp_path / "real" / "new.npz")
    ndl.save({"w": np.ones(2)}, dangling)
    assert dangling.is_symlink() and (tmp_path / "real" / "new.npz").is_file()


def test_save_refuses_what_is_not_a_regular_file(tmp_path):
    with pytest.raises(ValueError, match="a folder"):
        ndl.save({"w": np.ones(3)}, tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="a fifo"):
        ndl.save({"w": np.ones(3)}, fifo)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    with pytest.raises(ValueError, match="character device"):
        ndl.save({"w": np.ones(3)}, "/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_save_removes_temporaries_left_by_a_dead_process(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".m.npz.needle-{pid}-abc123.tmp"
    stale.write_bytes(b"half")
    alive = tmp_path / f".m.npz.needle-{os.getpid()}-xyz789.tmp"  # a save in progress in a live process
    alive.write_bytes(b"busy")
    other = tmp_path / f".other.npz.needle-{pid}-abc123.tmp"
    other.write_bytes(b"x")
    ndl.save({"w": np.ones(3)}, tmp_path / "m.npz")
    assert not stale.exists() and alive.exists() and other.exists()


@pytest.mark.parametrize("key", ["allow_pickle", "file", "x.npy", ""])
def test_save_refuses_keys_np_load_would_misread(tmp_path, key):
    with pytest.raises(ValueError, match="name"):
        ndl.save({key: np.ones(2), "y": np.zeros(2)}, tmp_path / "k.npz")
    assert not (tmp_path / "k.npz").exists()


# ---------------------------------------------------------------- train_mnist, one_hot, DataLoader, get_batch


def test_train_mnist_with_a_folder_lacking_the_files_names_them(tmp_path):
    from needle.apps.mlp_resnet import train_mnist

    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
                                                "t10k-labels-idx1-ubyte.gz") as info:
        train_mnist(epochs=1, data_dir=str(tmp_path))
    assert "train-images" not in str(info.value).split("files", 1)[1].split(";")[0]
    with pytest.raises(FileNotFoundError, match="data_dir=None"):
        train_mnist(epochs=1, data_dir=str(tmp_path / "absent"))


def test_train_mnist_with_data_dir_none_uses_the_bundled_split(monkeypatch):
    from needle.apps import mlp_resnet

    train, test = mlp_resnet._mnist_loaders(500, None)
    assert len(train.dataset) == data.MNIST_TRAIN_SIZE and len(test.dataset) == 10000 - data.MNIST_TRAIN_SIZE


@pytest.mark.parametrize("device", DEVICES, ids=str)
@pytest.mark.parametrize("labels", [[1.7], [0, 2.5], [np.nan], [np.inf]])
def test_one_hot_refuses_non_integer_labels_on_every_path(device, labels):
    with pytest.raises(ValueError, match="integers"):
        device.one_hot(3, labels)
    with pytest.raises(ValueError, match="integers"):
        ndl.init.one_hot(3, np.array(labels), device=device)
    np.testing.assert_array_equal(device.one_hot(3, [2.0, 0]).numpy(), [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(device.one_hot(3, np.array([1], np.uint8)).numpy(), [[0, 1, 0]])


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_dataloader_over_an_empty_dataset_yields_nothing(shuffle):
    loader = data.DataLoader(data.NDArrayDataset(np.zeros((0, 3)), np.zeros(0)), batch_size=4, shuffle=shuffle)
    assert list(loader) == [] and len(loader) == 0


def test_get_batch_refuses_negative_and_out_of_range_rows():
    batches = np.arange(20).reshape(10, 2)
    x, y = data.get_batch(batches, 0, 3)
    np.testing.assert_array_equal(x.numpy(), batches[:3])
    for i in (-1, -9, 10, 100):
        with pytest.raises(IndexError, match="out of range"):
            data.get_batch(batches, i, 3)
    with pytest.raises(ValueError, match="no target"):  # the last row has no next word
        data.get_batch(batches, 9, 3)
    for i in (1.0, "1", None):
        with pytest.raises(TypeError):
            data.get_batch(batches, i, 3)
    with pytest.raises(ValueError, match="bptt"):
        data.get_batch(batches, 0, 0)
    x, y = data.get_batch(batches, 8, 3)  # the last row that has a target
    assert x.shape == (1, 2)


# ---------------------------------------------------------------- course compatibility: broadcasting elementwise ops

BROADCAST_PAIRS = [((1, 3), (3,)), ((2, 3), (1, 3)), ((2, 1), (1, 3)), ((4, 1, 3), (2, 1)), ((), (2, 2)), ((3,), (2, 3))]
BINARY = [("EWiseAdd", lambda a, b: a + b, np.add), ("EWiseMul", lambda a, b: a * b, np.multiply),
          ("EWiseDiv", lambda a, b: a / b, np.divide), ("EWisePow", lambda a, b: a ** b, np.power)]


@pytest.mark.parametrize("device", [d for d in DEVICES], ids=str)
@pytest.mark.parametrize("name, op, ref", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("sa, sb", BROADCAST_PAIRS)
def test_elementwise_ops_broadcast_with_broadcast_to_nodes(device, name, op, ref, sa, sb):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0.5, 2.0, sa), rng.uniform(0.5, 2.0, sb)
    a, b = ndl.Tensor(x, device=device, dtype="float64"), ndl.Tensor(y, device=device, dtype="float64")
    out = op(a, b)
    np.testing.assert_allclose(out.numpy(), ref(x, y), rtol=1e-10)
    assert type(out.op).__name__ == name
    assert [type(i.op).__name__ if i.op else "leaf" for i in out.inputs] == [
        "leaf" if s == out.shape else "BroadcastTo" for s in (sa, sb)]
    out.sum().backward()
    eps = 1e-6
    for t, v, other, first in ((a, x, y, True), (b, y, x, False)):
        num = np.zeros_like(v)
        for idx in np.ndindex(v.shape):
            hi, lo = v.copy(), v.copy()
            hi[idx] += eps
            lo[idx] -= eps
            f = (lambda w: ref(w, other).sum()) if first else (lambda w: ref(other, w).sum())
            num[idx] = (f(hi) - f(lo)) / (2 * eps)
        assert t.grad.shape == v.shape
        np.testing.assert_allclose(t.grad.numpy(), num, rtol=1e-5, atol=1e-7)


def test_shapes_that_do_not_broadcast_name_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"EWiseMul: shapes \(2, 3\) and \(2,\) do not broadcast"):
        ndl.Tensor(np.ones((2, 3))) * ndl.Tensor(np.ones(2))


def test_broadcasting_on_the_numpy_backend():
    """The course's numpy-backend tests: (1, 3) ** (3,) and friends."""
    code = (
        "import numpy as np, needle as ndl\n"
        "a = ndl.Tensor(np.array([[1.0, 2.0, 3.0]])); b = ndl.Tensor(np.array([2.0, 1.0, 0.5]))\n"
        "c = a ** b\n"
        "assert c.shape == (1, 3) and np.allclose(c.numpy(), [[1.0, 2.0, 3.0 ** 0.5]])\n"
        "c.sum().backward()\n"
        "assert b.grad.shape == (3,) and a.grad.shape == (1, 3)\n"
        "assert np.allclose(b.grad.numpy(), [0.0, 2.0 * np.log(2.0), 3.0 ** 0.5 * np.log(3.0)])\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NEEDLE_BACKEND": "np"})
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]
