"""The strided NDArray and its devices (cpu_numpy, cpu, cuda), as the course's `array_api`."""
from .ndarray import *  # noqa: F401,F403
from .ndarray import __all__  # noqa: F401
