"""The data pipeline: datasets, transforms, minibatch loading, bundled data and verified downloads."""
from .data_basic import *  # noqa: F401,F403
from .data_transforms import *  # noqa: F401,F403
from .datasets import *  # noqa: F401,F403
from .paths import *  # noqa: F401,F403
from .remote import ChecksumError, download  # noqa: F401
