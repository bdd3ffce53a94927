"""needle.save / needle.load: parameters and buffers as a numpy .npz archive (no pickle), written atomically.

save() writes to a temporary file next to the target and renames it over the target, so a crash never leaves a
half-written archive. It behaves as writing the file would: the target keeps its permission bits, a symlink is
written through (its target replaced, the link kept), and anything that is not a regular file (a device, a
folder, a fifo) is refused rather than replaced. Temporary files left by a process that died are removed.

load() checks each member of the archive before numpy allocates it: the size a member's header declares must
match the size the archive records for it (and what its compressed bytes can hold), and the total is bounded by
`max_bytes`, so a small hostile file cannot cost gigabytes.
"""
from __future__ import annotations

import inspect
import os
import re
import stat
import tempfile
import zipfile
from typing import Mapping, Optional, Union

import numpy as np

__all__ = ["save", "load"]

PathLike = Union[str, os.PathLike]

#: Names np.savez takes as its own arguments (so they could not be array names), and np.load's `.npy` suffix rule.
_RESERVED = {p for p in inspect.signature(np.savez).parameters if p not in ("args", "kwds")} | {"args", "kwds"}
_TMP = re.compile(r"^\.(?P<name>.+)\.needle-(?P<pid>\d+)-[^.]+\.tmp$")
#: Deflate cannot compress better than about 1032:1: a member declaring more is lying about its size.
_MAX_DEFLATE_RATIO = 1100
#: A compressed member expanding more than 100:1 to more than 16 MiB is refused unless max_bytes=None.
_BOMB_RATIO, _BOMB_BYTES = 100, 16 << 20


def _arrays(obj) -> dict[str, np.ndarray]:
    """The named arrays to store: a Module's state_dict(), or a mapping of names to Tensors/arrays."""
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: expected a Module or a mapping of names to arrays, got {type(obj).__name__}")
    out = {}
    for name, value in obj.items():
        if not isinstance(name, str):
            raise TypeError(f"save: keys must be strings, got {name!r}")
        if name in _RESERVED:
            raise ValueError(f"save: {name!r} cannot be an array name (np.savez takes it as its own argument)")
        if name.endswith(".npy"):
            raise ValueError(f"save: {name!r}: np.load reads name.npy and name as the same entry; drop the '.npy'")
        if name == "" or "\0" in name:
            raise ValueError(f"save: {name!r} is not a usable array name")
        arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
        if arr.dtype == object:
            raise TypeError(f"save: '{name}' is not a numeric array (no pickle is written)")
        out[name] = arr
    return out


def _target(path: str) -> str:
    """The file to replace: `path`, or what it links to; refuses anything but a regular file (or a new one)."""
    real = os.path.realpath(path) if os.path.islink(path) else path
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        if os.path.islink(path) and not os.path.isdir(os.path.dirname(os.path.abspath(real))):
            raise FileNotFoundError(f"save: {path} links to {real}, whose folder does not exist") from None
        return real
    if not stat.S_ISREG(mode):
        raise ValueError(f"save: {path} is not a regular file ({_kind(mode)}); refusing to replace it")
    return real


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a fifo"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temporaries(folder: str, name: str) -> None:
    """Temporary files of earlier saves to `name` whose process is gone (it died between write and rename)."""
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        m = _TMP.match(entry)
        if m and m.group("name") == name and not _pid_alive(int(m.group("pid"))):
            try:
                os.unlink(os.path.join(folder, entry))
            except OSError:
                pass


def save(obj, path: PathLike) -> None:
    """Writes obj (a Module or a {name: Tensor/array} mapping) to `path` as .npz.
    The file is written to a temporary name in the same folder and renamed, so a crash never leaves
    a half-written archive under `path`; an existing file keeps its permissions, a symlink is written
    through, and a path that is not a regular file is refused."""
    arrays = _arrays(obj)
    target = _target(os.fspath(path))
    folder, name = os.path.split(os.path.abspath(target))
    _remove_stale_temporaries(folder, name)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.needle-{os.getpid()}-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _check_archive(path: str, max_bytes: Optional[int]) -> None:
    """Every member's declared array size against the archive's record of it, before anything is allocated."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise ValueError(f"load: {path} is not an .npz archive ({e})") from None
    total = 0
    with zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                raise ValueError(f"load: {path}: member {info.filename!r} is not a .npy array")
            ratio = info.file_size / max(info.compress_size, 1)
            if info.compress_type != zipfile.ZIP_STORED and (
                    ratio > _MAX_DEFLATE_RATIO or (max_bytes is not None and ratio > _BOMB_RATIO
                                                   and info.file_size > _BOMB_BYTES)):
                raise ValueError(f"load: {path}: member {info.filename!r} expands {info.compress_size} compressed "
                                 f"bytes to {info.file_size} (a decompression bomb?); pass max_bytes=None to load "
                                 "it anyway")
            try:
                with zf.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                                   (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if read_header is None:
                        raise ValueError(f"unsupported .npy version {version}")
                    shape, _, dtype = read_header(member, max_header_size=10000)
                    header = member.tell()
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
                raise ValueError(f"load: {path}: member {info.filename!r} is not a valid .npy array ({e})") from None
            if dtype.hasobject:
                raise ValueError(f"load: {path}: member {info.filename!r} holds Python objects (pickle is refused)")
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if nbytes != info.file_size - header:
                raise ValueError(f"load: {path}: member {info.filename!r} declares shape {shape} of {dtype} "
                                 f"({nbytes} bytes), but the archive holds {info.file_size - header}")
            total += nbytes
            if max_bytes is not None and total > max_bytes:
                raise ValueError(f"load: {path} holds more than max_bytes={max_bytes} bytes of arrays "
                                 "(pass a larger max_bytes, or None, to load it)")


def load(path: PathLike, model=None, *, max_bytes: Optional[int] = 2**32) -> dict[str, np.ndarray]:
    """Reads an archive written by save() (pickle is refused) and returns {name: numpy array}; with
    `model`, also loads it into the model (strict: missing/unexpected keys or shapes raise). Archives whose
    members' declared sizes disagree with the file, that hold more than `max_bytes` bytes of arrays
    (default 4 GiB), or whose compressed members expand more than 100:1 to over 16 MiB raise ValueError before
    anything is allocated; max_bytes=None lifts both bounds."""
    path = os.fspath(path)
    _check_archive(path, max_bytes)
    with np.load(path, allow_pickle=False) as archive:
        state = {name: archive[name] for name in archive.files}
    if model is not None:
        model.load_state_dict(state)
    return state
