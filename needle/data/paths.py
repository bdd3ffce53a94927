"""Where datasets live: the bundled `data/` folder (offline) and the download cache (full datasets)."""
import os
from pathlib import Path

__all__ = ["data_dir", "cache_dir"]

_REPO_DATA = Path(__file__).resolve().parents[2] / "data"


def data_dir() -> Path:
    """The folder of bundled datasets: $NEEDLE_DATA_DIR when set, else `data/` next to the package."""
    path = Path(os.environ.get("NEEDLE_DATA_DIR", _REPO_DATA)).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"bundled data folder {path} does not exist; set NEEDLE_DATA_DIR to the repository's data/ folder"
        )
    return path


def cache_dir() -> Path:
    """The download cache for full datasets: $NEEDLE_DATA when set, else ~/.cache/needle (created on demand)."""
    path = Path(os.environ.get("NEEDLE_DATA", Path.home() / ".cache" / "needle")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
