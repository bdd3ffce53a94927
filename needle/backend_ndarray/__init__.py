"""The strided NDArray and its devices (cpu_numpy, cpu, cuda), as the course's `array_api`."""
from .array_functions import *  # noqa: F401,F403
from .array_functions import __all__ as _functions
from .ndarray import *  # noqa: F401,F403
from .ndarray import __all__ as _array

__all__ = _array + _functions
