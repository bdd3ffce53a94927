"""needle/nn/nn_time.py: sinusoidal embeddings of integer steps, against the formula in float64 numpy."""
import numpy as np
import pytest

import needle as ndl
from needle import nn
from needle.nn.nn_time import sinusoidal_embedding


def test_sinusoidal_embedding_values_and_shape():
    t = np.array([0, 1, 7, 99])
    got = nn.SinusoidalEmbedding(6, max_period=100.0)(t)
    freqs = 100.0 ** (-np.arange(3) / 3)
    want = np.concatenate([np.sin(t[:, None] * freqs), np.cos(t[:, None] * freqs)], axis=1)
    assert got.shape == (4, 6) and not got.requires_grad
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(sinusoidal_embedding(np.array([0]), 4), [[0, 0, 1, 1]])


@pytest.mark.parametrize("bad", [0, 3, 1])
def test_sinusoidal_embedding_rejects_odd_or_tiny_dims(bad):
    with pytest.raises(ValueError, match="even"):
        nn.SinusoidalEmbedding(bad)


def test_sinusoidal_embedding_rejects_a_grid_of_steps():
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        sinusoidal_embedding(np.zeros((2, 2)), 4)


def test_the_default_longest_period_is_the_transformers_10000():
    t = np.array([3.0, 250.0])
    freqs = 10000.0 ** (-np.arange(4) / 4)
    want = np.concatenate([np.sin(t[:, None] * freqs), np.cos(t[:, None] * freqs)], axis=1)
    np.testing.assert_allclose(sinusoidal_embedding(t, 8), want, rtol=1e-13)
    np.testing.assert_allclose(nn.SinusoidalEmbedding(8, dtype="float64")(ndl.Tensor(t)).numpy(), want, rtol=1e-13)


def test_two_is_the_smallest_dim_one_sine_and_one_cosine():
    np.testing.assert_allclose(sinusoidal_embedding(np.array([0.0, 1.0]), 2), [[0, 1], [np.sin(1), np.cos(1)]])
    assert nn.SinusoidalEmbedding(2)(np.array([3])).shape == (1, 2)
