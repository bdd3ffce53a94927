"""needle.distributed: data-parallel training on MPI (mpi4py), one process per rank, launched by `mpirun -n N`."""
from .comm import DistributedError, allreduce_, barrier, broadcast_, init, is_initialized, rank, timeout, world_size  # noqa: F401
from .ddp import DistributedDataParallel, broadcast_parameters  # noqa: F401
from .launch import mpirun, run  # noqa: F401
from .ring import ring_allreduce  # noqa: F401
