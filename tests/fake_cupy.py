"""A stand-in for CuPy whose kernels are the CUDA simulator's: every launch runs the real kernel and every argument is
checked against the kernel's parameter types exactly as a GPU would need them. Shared by the launcher's tests
(tests/backend/test_cuda_gpu_launcher.py) and chapter 06's (a learner's kernels launched as on a GPU)."""
import types

import numpy as np

# the numpy scalar type a GPU launch must pass for each of the simulator's parameter kinds
EXACT = {"s": np.float32, "t": np.float64, "l": np.int64, "n": np.int32, "u": np.uint32, "b": np.bool_}


class FakeDeviceArray:
    """A 1-D 'GPU' array backed by a simulator buffer."""

    def __init__(self, sim_array):
        from needle.backend_ndarray import ndarray_backend_cuda_sim as sim  # noqa: F401

        self.buffer = sim_array
        self.host = np.asarray(sim_array)
        self.size, self.dtype, self.itemsize = self.host.size, self.host.dtype, self.host.itemsize
        self.data = types.SimpleNamespace(ptr=sim_array.ptr())

    def set(self, values):
        self.host[:] = values

    def __getitem__(self, index):
        return self.host[index]


def fake_cupy():
    from needle.backend_ndarray import ndarray_backend_cuda_sim as sim

    kernels = sim.builtin_kernels()
    launches = []

    def run(name):
        def kernel(grid, block, args):
            params = kernels[name].params
            assert len(args) == len(params), f"{name}: {len(args)} arguments for {len(params)} parameters"
            converted = []
            for value, param in zip(args, params):
                if param.endswith("*"):
                    assert isinstance(value, FakeDeviceArray), f"{name}: {param} got {type(value).__name__}"
                    converted.append(value.buffer)
                else:
                    kind = {"float": "s", "double": "t", "long long": "l", "int": "n", "unsigned int": "u", "bool": "b"}[param]
                    assert type(value) is EXACT[kind], f"{name}: {param} parameter got {type(value).__name__}"
                    converted.append(value.item())
            launches.append(name)
            kernels[name](grid, block, converted, checked=True)

        return kernel

    module = types.SimpleNamespace(get_function=run)
    cupy = types.SimpleNamespace(
        empty=lambda size, dtype: FakeDeviceArray(sim.Array(size, np.dtype(dtype).name)),
        asarray=lambda values: _filled(sim, np.asarray(values)),
        asnumpy=lambda x: np.array(x),
        RawModule=lambda code, options: module,
        lib=types.SimpleNamespace(stride_tricks=np.lib.stride_tricks),
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceProperties=lambda i: {"multiProcessorCount": 2}),
                                   Device=lambda: types.SimpleNamespace(id=0)),
    )
    return cupy, launches


def _filled(sim, values):
    arr = FakeDeviceArray(sim.Array(values.size, values.dtype.name))
    arr.set(values.reshape(-1))
    return arr
