"""The op set: ops_mathematic (incl. Conv), ops_logarithmic, ops_tuple, star-exported as in the course, and
ops_fused (sigmoid, embedding, softmax cross-entropy, normalization, LSTM step: one device kernel each)."""
from .ops_mathematic import *  # noqa: F401,F403
from .ops_logarithmic import *  # noqa: F401,F403
from .ops_tuple import *  # noqa: F401,F403
from .ops_fused import *  # noqa: F401,F403
