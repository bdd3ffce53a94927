"""needle.nn: modules (course hw2/hw4/hw4_extra), re-exported flat as the course does."""
from .nn_basic import *  # noqa: F401,F403
from .nn_conv import *  # noqa: F401,F403
from .nn_sequence import *  # noqa: F401,F403
from .nn_transformer import *  # noqa: F401,F403
from .nn_checkpoint import *  # noqa: F401,F403
from .nn_time import *  # noqa: F401,F403
