"""Every course test starts and ends with needle's reference installed (no learner code left from another test)."""
import pytest

from needle import course


@pytest.fixture(autouse=True)
def clean_install():
    course.reset()
    yield
    course.reset()
