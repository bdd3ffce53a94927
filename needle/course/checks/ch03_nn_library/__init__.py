"""Chapter 03 (course hw2): initialisers, modules, LogSumExp, optimizers, data pipeline, MLP-ResNet.

Checks seed numpy's global RNG and compare the learner's object with numpy re-computations drawn in the course's
order, with float64 central differences for gradients, and with the course's golden values from its hw2 tests.
"""
# Each module registers its exercises, in the chapter's order; the hints name them, so they come last.
from . import initializers, modules, optimizers, data, mlp_resnet  # noqa: F401,I001
from . import hints  # noqa: F401,E402
