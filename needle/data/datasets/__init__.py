"""Datasets: MNIST (IDX), CIFAR-10 (python or binary batches), Penn Treebank, in-memory arrays."""
from .cifar10_dataset import *  # noqa: F401,F403
from .mnist_dataset import *  # noqa: F401,F403
from .ndarray_dataset import *  # noqa: F401,F403
from .ptb_dataset import *  # noqa: F401,F403
