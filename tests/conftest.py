"""Shared test settings: a hypothesis profile, the `slow` marker, the `device` fixture (one run per enabled device),
the nn/model suites run whole on every enabled device by making it the default device, and the in-process IPython
and build cache of the compiled-cell tests (`%%needle_cpp`)."""
import os

# Two test workers share two cores: OpenMP workers sleep at once rather than spin for the next kernel (needle's
# default, right for one process, costs the suite ~10%). Before needle loads libgomp, which reads it then.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

import needle.backend_ndarray as nd  # noqa: E402

# deadline off: the 2-core CI machine is shared; each test sets its own modest max_examples
settings.register_profile("needle", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("needle")

DEVICES = [d for d in nd.all_devices() if d.enabled()]

# Suites that run notebooks, browsers, compilers or fresh installs: `pytest -m "not slow"` leaves them out.
SLOW_SUITES = {"test_notebooks", "test_browser", "test_binder", "test_install", "test_no_crash", "test_workbook",
               "test_course_ch05", "test_course_ch06", "test_course_cpp", "test_course_flow", "test_ops_numpy_backend"}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.stem in SLOW_SUITES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", params=DEVICES, ids=str)
def device(request):
    """Every enabled device of `all_devices()` (cpu(), cpu_numpy(); cuda() with a GPU)."""
    return request.param


# suites whose tests create tensors without naming a device: each runs once per device, as the default
DEFAULT_DEVICE_SUITES = {"test_nn_basic", "test_nn_conv", "test_nn_sequence", "test_nn_transformer", "test_models",
                         "test_optim"}


@pytest.fixture(autouse=True)
def on_default_device(request):
    """Makes `request.param` (a device) the default device for one test of DEFAULT_DEVICE_SUITES."""
    device = getattr(request, "param", None)
    if device is None:
        yield
        return
    before, nd.devices._DEFAULT = nd.devices._DEFAULT, device
    try:
        yield
    finally:
        nd.devices._DEFAULT = before


def pytest_generate_tests(metafunc):
    if metafunc.module.__name__ in DEFAULT_DEVICE_SUITES:
        metafunc.parametrize("on_default_device", DEVICES, indirect=True, ids=lambda d: f"on-{d}")


@pytest.fixture(scope="module")
def build_cache(tmp_path_factory, request):
    """One build cache per test module: each distinct cell is compiled once (pybind11 builds take seconds)."""
    return tmp_path_factory.mktemp("needle_cache_" + request.module.__name__.rpartition(".")[2])


@pytest.fixture(scope="module")
def ipython():
    """An in-process IPython for one test module (cleared after, so other tests see no running IPython)."""
    shell = pytest.importorskip("IPython").core.interactiveshell.InteractiveShell
    yield shell.instance()
    shell.clear_instance()
