"""ndl.memory_stats: live and peak bytes of NDArray buffers per device, against allocations of known size."""
import gc

import numpy as np
import pytest

import needle as ndl
from needle import backend_ndarray as nd

DEVICES = [d for d in (nd.cpu(), nd.cpu_numpy(), nd.cuda_sim()) if d.enabled()]


@pytest.fixture(params=DEVICES, ids=[d.name for d in DEVICES])
def device(request):
    gc.collect()  # buffers of earlier tests are freed before counting
    return request.param


@pytest.mark.parametrize("dtype,itemsize", [("float32", 4), ("float64", 8)])
def test_an_array_adds_its_bytes_until_it_is_freed(device, dtype, itemsize):
    before = ndl.memory_stats(device)
    a = nd.empty((7, 13), device=device, dtype=dtype)
    now = ndl.memory_stats(device)
    assert now.current - before.current == 7 * 13 * itemsize
    assert now.live_buffers - before.live_buffers == 1
    del a
    assert ndl.memory_stats(device).current == before.current


def test_views_share_their_buffer_and_cost_nothing(device):
    a = nd.NDArray(np.random.randn(6, 8).astype(np.float32), device=device)
    before = ndl.memory_stats(device).current
    views = [a.reshape((8, 6)), a.permute((1, 0)), a[1:4, ::2], a.broadcast_to((6, 8))]
    assert ndl.memory_stats(device).current == before
    del a
    assert ndl.memory_stats(device).current == before  # the views keep the buffer alive
    del views
    assert ndl.memory_stats(device).current == before - 6 * 8 * 4


def test_peak_is_the_most_alive_at_once_and_reset_starts_from_now(device):
    ndl.reset_peak_memory_stats(device)
    base = ndl.memory_stats(device).current
    sizes = [100, 300, 50]
    arrays = [nd.empty((n,), device=device) for n in sizes]
    del arrays[1]  # 300 floats freed
    tmp = nd.empty((200,), device=device)
    del tmp
    stats = ndl.memory_stats(device)
    assert stats.current - base == (100 + 50) * 4
    assert stats.peak - base == (100 + 300 + 50) * 4
    ndl.reset_peak_memory_stats(device)
    assert ndl.memory_stats(device).peak == ndl.memory_stats(device).current
    del arrays


def test_an_op_counts_its_output(device):
    x = nd.NDArray(np.ones((32, 16), np.float32), device=device)
    y = nd.NDArray(np.ones((16, 8), np.float32), device=device)
    before = ndl.memory_stats(device).current
    out = x @ y
    assert ndl.memory_stats(device).current - before == 32 * 8 * 4
    del out


def test_devices_are_counted_apart():
    a, b = nd.cpu(), nd.cpu_numpy()
    before = ndl.memory_stats(b).current
    x = nd.empty((1000,), device=a)
    assert ndl.memory_stats(b).current == before
    del x


def test_default_device_and_bad_device():
    assert ndl.memory_stats().device == nd.default_device().name
    with pytest.raises(TypeError, match="memory_stats: expected a needle device"):
        ndl.memory_stats("cpu")
    with pytest.raises(TypeError, match="reset_peak_memory_stats: expected a needle device"):
        ndl.reset_peak_memory_stats(3)
