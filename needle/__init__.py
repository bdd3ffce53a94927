"""needle: a small deep learning library built from scratch, after CMU 10-414/714."""
from . import backend_ndarray  # noqa: F401
from .backend_selection import *  # noqa: F401,F403
