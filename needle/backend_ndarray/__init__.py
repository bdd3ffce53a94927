"""The strided NDArray and its devices (cpu_numpy, cpu, cuda)."""
from .ndarray import *  # noqa: F401,F403
from .ndarray import BackendDevice, NDArray, all_devices, cpu, cpu_numpy, cuda, default_device  # noqa: F401
