"""Shared inputs for the nn/optim/model tests: the course's deterministic tensors and a torch helper."""
import numpy as np
import pytest

import needle as ndl


def get_tensor(*shape, entropy=1, device=None, dtype="float32"):
    """The course tests' deterministic input: integers 0..99 / 20, seeded by shape and entropy."""
    np.random.seed(np.prod(shape) * len(shape) * entropy)
    return ndl.Tensor(np.random.randint(0, 100, size=shape) / 20, device=device, dtype=dtype)


def get_int_tensor(*shape, low=0, high=10, entropy=1, device=None):
    np.random.seed(np.prod(shape) * len(shape) * entropy)
    return ndl.Tensor(np.random.randint(low, high, size=shape), device=device)


def torch_or_skip():
    """torch when installed (comparisons only), else the test is skipped."""
    return pytest.importorskip("torch")


def num_params(model) -> int:
    return int(sum(np.prod(p.shape) for p in model.parameters()))


def grad_of(x) -> np.ndarray:
    return x.grad.numpy()


def check_against_torch(ours, ref, X: np.ndarray, torch, tol=1e-4, grad_tol=1e-3):
    """Runs our module and the torch one on X; compares the outputs and the input gradients of sum(y^2)."""
    x, xt = ndl.Tensor(X), torch.tensor(X, requires_grad=True)
    y, yt = ours(x), ref(xt)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=tol, atol=tol)
    (y * y).sum().backward()
    (yt * yt).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=grad_tol, atol=grad_tol)
