"""needle/course/warmup.py: chapter 0's logistic regression, the reference the learner's sigmoid replaces."""
import numpy as np
import pytest

from needle.course import warmup


def test_sigmoid_matches_the_formula_and_never_overflows():
    x = np.array([-1000.0, -30.0, -1.5, 0.0, 0.7, 30.0, 1000.0])
    with np.errstate(over="raise"):
        got = warmup.sigmoid(x)
    with np.errstate(over="ignore"):
        want = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)
    assert got[3] == 0.5 and warmup.sigmoid(np.float32([2.0])).dtype == np.float32


def test_predict_proba_is_the_sigmoid_of_the_scores():
    X, w = np.array([[1.0, 2.0], [-3.0, 0.5]]), np.array([0.25, -1.0])
    np.testing.assert_allclose(warmup.predict_proba(X, w), 1 / (1 + np.exp(-(X @ w))), rtol=1e-15)


def _epoch(X, y, w, lr, batch):
    """The definition, written out: minibatch gradient steps on the mean logistic loss, in order."""
    losses = []
    for start in range(0, len(X), batch):
        xb, yb = X[start:start + batch], y[start:start + batch]
        p = 1 / (1 + np.exp(-(xb @ w)))
        losses.append(-np.mean(yb * np.log(p + 1e-12) + (1 - yb) * np.log(1 - p + 1e-12)))
        w = w - lr * xb.T @ (p - yb) / len(xb)
    return w, float(np.mean(losses))


@pytest.mark.parametrize("kwargs, lr, batch", [({}, 0.5, 100), ({"lr": 0.1, "batch": 64}, 0.1, 64)])
def test_logistic_epoch_takes_minibatch_steps_in_place_and_returns_the_mean_loss(kwargs, lr, batch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((250, 3))  # 250 is no multiple of the batch: the last one is short
    y = (X @ np.array([1.0, -2.0, 0.5]) > 0).astype(np.float64)
    w = np.zeros(3)
    loss = warmup.logistic_epoch(X, y, w, **kwargs)
    want_w, want_loss = _epoch(X, y, np.zeros(3), lr, batch)
    np.testing.assert_allclose(w, want_w, rtol=1e-12)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    assert warmup.logistic_epoch(X, y, w, **kwargs) < loss  # a second epoch does better
