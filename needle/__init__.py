"""needle: a small deep learning library built from scratch, after CMU 10-414/714."""
from ._editable import rebuild_once as _rebuild_once

_rebuild_once()  # editable installs that rebuild on import (make install): before anything compiled loads
from . import ops
from .ops import *  # noqa: F401,F403
from .autograd import Tensor, TensorTuple, cpu, all_devices  # noqa: F401
from . import init
from .init import ones, zeros, zeros_like, ones_like  # noqa: F401
from . import data
from . import nn
from . import optim
from .serialization import save, load  # noqa: F401
from . import backend_ndarray  # noqa: F401
from .backend_ndarray.memory import MemoryStats, memory_stats, reset_peak_memory_stats  # noqa: F401
from .backend_selection import *  # noqa: F401,F403
