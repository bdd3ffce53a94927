"""Shared test settings: a hypothesis profile and the `device` fixture (one run per enabled device)."""
import pytest
from hypothesis import HealthCheck, settings

import needle.backend_ndarray as nd

# deadline off: the 2-core CI machine is shared; each test sets its own modest max_examples
settings.register_profile("needle", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("needle")

DEVICES = [d for d in nd.all_devices() if d.enabled()]


@pytest.fixture(scope="session", params=DEVICES, ids=str)
def device(request):
    """Every enabled device of `all_devices()` (cpu(), cpu_numpy(); cuda() with a GPU)."""
    return request.param
