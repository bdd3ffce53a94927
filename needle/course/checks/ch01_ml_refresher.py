"""Chapter 01 (course hw0): numpy warm-up, softmax regression, a two-layer net, and the same epoch in C++."""
from __future__ import annotations

import gzip
import os
import struct
import tempfile
from typing import Any, Callable

import numpy as np

from ..cases import rng_for, softmax_loss64, strided
from ..compare import expect, expect_close
from ..install import reference
from ..registry import exercise_check, set_hints

APPS = "needle.apps.simple_ml_numpy"


def _problems(name: str, count: int = 4):
    """Small classification problems (X float32 (m, n), y uint8 (m,), k classes, batch) with ragged last batches."""
    rng = rng_for(name)
    for _ in range(count):
        m, n, k = int(rng.integers(15, 60)), int(rng.integers(2, 9)), int(rng.integers(2, 6))
        X = (rng.standard_normal((m, n)) / np.sqrt(n)).astype(np.float32)
        yield X, rng.integers(0, k, size=m).astype(np.uint8), k, int(rng.integers(4, 13))


@exercise_check("ml_refresher.add", target=f"{APPS}:add", hint="return x + y")
def check_add(add: Callable) -> int:
    expect(add(5, 6) == 11, f"add(5, 6) gave {add(5, 6)!r}, expected 11")
    expect_close(add(3.2, 1.0), 4.2, what="add(3.2, 1.0)")
    expect(type(add(4.0, 4)) is float, f"add(4.0, 4) gave a {type(add(4.0, 4)).__name__}, expected a float")
    a, b = np.arange(6.0).reshape(2, 3), np.ones((2, 3))
    expect_close(add(a, b), a + b, what="add of two arrays", inputs={"x": a, "y": b})
    return 4


def _write_idx(folder: str, images: np.ndarray, labels: np.ndarray) -> tuple[str, str]:
    """Gzipped IDX files (the MNIST format: big-endian header, then raw bytes)."""
    image_path, label_path = os.path.join(folder, "images.gz"), os.path.join(folder, "labels.gz")
    with gzip.open(image_path, "wb") as f:
        f.write(struct.pack(">IIII", 2051, *images.shape) + images.tobytes())
    with gzip.open(label_path, "wb") as f:
        f.write(struct.pack(">II", 2049, len(labels)) + labels.tobytes())
    return image_path, label_path


@exercise_check("ml_refresher.parse_mnist", target=f"{APPS}:parse_mnist",
                hint="gzip.open the files, read the big-endian header with struct.unpack('>IIII', ...), then "
                     "np.frombuffer the pixels as uint8; X = float32 pixels / 255 of shape (num, rows*cols)")
def check_parse_mnist(parse_mnist: Callable) -> int:
    rng = rng_for("ml_refresher.parse_mnist")
    cases = 0
    for count in (1, 7):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        images[0, 0, 0], images[-1, -1, -1] = 0, 255
        labels = rng.integers(0, 10, size=count, dtype=np.uint8)
        with tempfile.TemporaryDirectory() as folder:
            X, y = parse_mnist(*_write_idx(folder, images, labels))
        X, y = np.asarray(X), np.asarray(y)
        expect(X.dtype == np.float32, f"X has dtype {X.dtype}, expected float32")
        expect(y.dtype == np.uint8, f"y has dtype {y.dtype}, expected uint8")
        expect_close(X, images.reshape(count, 784) / np.float32(255), what="X (pixels / 255)",
                     inputs={"pixels": images}, rtol=0, atol=1e-6)
        expect_close(y, labels, what="y", rtol=0, atol=0)
        cases += 1
    return cases


@exercise_check("ml_refresher.softmax_loss", target=f"{APPS}:softmax_loss",
                hint="mean over rows of log(sum_j exp(Z[i, j])) - Z[i, y[i]]; index with Z[np.arange(m), y]")
def check_softmax_loss(softmax_loss: Callable) -> int:
    rng = rng_for("ml_refresher.softmax_loss")
    cases = 0
    for _ in range(4):
        m, k = int(rng.integers(1, 20)), int(rng.integers(2, 11))
        Z = rng.standard_normal((m, k)).astype(np.float32)
        y = rng.integers(0, k, size=m).astype(np.uint8)
        for view in (Z, strided(Z)):
            got = softmax_loss(view, y)
            expect(np.ndim(got) == 0, f"softmax_loss returned shape {np.shape(got)}, expected a scalar (the average)")
            expect_close(got, softmax_loss64(view, y), what="softmax_loss(Z, y)", inputs={"Z": view, "y": y},
                         rtol=1e-5)
            cases += 1
    return cases


def _epoch_cases(name: str, epoch: Callable, reference_epoch: Callable, make_params: Callable, **kwargs: Any) -> int:
    """Run the learner's epoch and the reference on copies of the same parameters; compare the in-place updates."""
    cases = 0
    for X, y, k, batch in _problems(name):
        params = make_params(X.shape[1], k)
        mine, ref = [p.copy() for p in params], [p.copy() for p in params]
        result = epoch(X, y, *mine, lr=0.1, batch=batch, **kwargs)
        reference_epoch(X, y, *ref, lr=0.1, batch=batch)
        expect(result is None, f"the epoch should update its parameters in place and return None, got {type(result).__name__}")
        for i, (got, want) in enumerate(zip(mine, ref)):
            expect_close(got, want, what=f"parameter {i + 1} after one epoch (lr=0.1, batch={batch})",
                         inputs={"X": X, "y": y}, rtol=1e-4, atol=1e-5)
        cases += 1
    return cases


@exercise_check("ml_refresher.softmax_regression_epoch", target=f"{APPS}:softmax_regression_epoch",
                hint="for each minibatch in order: Z = normalize(exp(Xb @ theta)); theta -= lr / b * Xb.T @ (Z - I_y)")
def check_softmax_regression_epoch(epoch: Callable) -> int:
    return _epoch_cases("ml_refresher.softmax_regression_epoch", epoch,
                        reference(f"{APPS}:softmax_regression_epoch"),
                        lambda n, k: [np.zeros((n, k), dtype=np.float32)])


@exercise_check("ml_refresher.nn_epoch", target=f"{APPS}:nn_epoch",
                hint="Z1 = relu(X W1); G2 = normalize(exp(Z1 W2)) - I_y; G1 = (Z1 > 0) * (G2 W2^T); "
                     "W1 -= lr/b X^T G1; W2 -= lr/b Z1^T G2, in place")
def check_nn_epoch(epoch: Callable) -> int:
    rng = rng_for("ml_refresher.nn_epoch.params")

    def params(n: int, k: int) -> list[np.ndarray]:
        hidden = 7
        return [(rng.standard_normal((n, hidden)) / np.sqrt(hidden)).astype(np.float32),
                (rng.standard_normal((hidden, k)) / np.sqrt(k)).astype(np.float32)]

    return _epoch_cases("ml_refresher.nn_epoch", epoch, reference(f"{APPS}:nn_epoch"), params)


@exercise_check("ml_refresher.softmax_regression_epoch_cpp", target="needle.apps.simple_ml_ext:softmax_regression_epoch_cpp",
                hint="the numpy epoch as loops over raw row-major pointers: X[i*n + j], theta[i*k + j]; "
                     "allocate Z (b x k) and the gradient (n x k) per minibatch", language="c++")
def check_softmax_regression_epoch_cpp(epoch_cpp: Callable) -> int:
    def keywords(X, y, theta, lr, batch):  # the C++ binding takes keyword arguments only
        return epoch_cpp(X=X, y=y, theta=theta, lr=lr, batch=batch)

    return _epoch_cases("ml_refresher.softmax_regression_epoch_cpp", keywords,
                        reference(f"{APPS}:softmax_regression_epoch"),
                        lambda n, k: [np.zeros((n, k), dtype=np.float32)])


set_hints({
    "ml_refresher.add": (
        "return the sum of the two arguments (numbers or numpy arrays alike)",
        ["Python's + already works for ints, floats and numpy arrays: one line does it.",
         "The result of adding the two arguments is what the function returns."]),
    "ml_refresher.parse_mnist": (
        "read the two gzipped IDX files into X (float32, one row of pixels / 255 per image) and y (uint8 labels)",
        ["Each file is gzip-compressed: a big-endian header of 32-bit integers, then raw bytes. Open it with "
         "gzip.open in binary mode, read the header, then read everything that follows as unsigned bytes.",
         "The image header is 4 integers (magic 2051, count, rows, cols), the label header 2 (magic 2049, count). "
         "struct.unpack with format '>IIII' (or '>II') decodes them; '>' means big-endian.",
         "np.frombuffer(f.read(), dtype=np.uint8) gives the bytes; reshape the pixels to (count, rows * cols), "
         "convert to float32 and divide by 255. Check the magic numbers and the sizes and raise ValueError if "
         "they are wrong."]),
    "ml_refresher.softmax_loss": (
        "the mean softmax (cross-entropy) loss of logits Z over the rows of the batch, as a Python float, without "
        "overflow for large logits",
        ["Per row i the loss is log(sum_j exp(Z[i, j])) minus the logit of the true class y[i]. Subtracting the "
         "row's maximum before exp changes nothing mathematically and keeps exp from overflowing.",
         "With m = max_j Z[i, j]: log sum_j exp(Z[i, j]) = m + log sum_j exp(Z[i, j] - m). The true-class logits "
         "of all rows at once are Z[np.arange(len(y)), y].",
         "Shape of the code: the row maxima with keepdims=True, the shifted log-sum-exp per row, minus the picked "
         "logits, then np.mean and float()."]),
    "ml_refresher.softmax_regression_epoch": (
        "one epoch of minibatch SGD on softmax regression, batches taken in order, updating theta in place",
        ["Walk the rows in slices of `batch` (the last may be shorter). For each minibatch compute the softmax "
         "probabilities of its logits, subtract 1 at each true class, and take a gradient step on theta.",
         "For a minibatch Xb of b rows: Z = softmax(Xb theta) row by row, I_y the one-hot labels; the gradient is "
         "Xb^T (Z - I_y) / b and the step is theta <- theta - lr * gradient.",
         "Use the max-shift trick for the softmax; Z[np.arange(b), yb] -= 1 forms Z - I_y without building I_y; "
         "update with -= so the caller's array changes (in place)."]),
    "ml_refresher.nn_epoch": (
        "one epoch of minibatch SGD on the two-layer ReLU network, with the backward pass written by hand, "
        "updating W1 and W2 in place",
        ["Forward: hidden activations, then logits. Backward, walking back: the gradient at the logits is the "
         "softmax minus the one-hot labels; push it back through W2, then through the ReLU (zero where the hidden "
         "unit was off).",
         "Z1 = ReLU(Xb W1); G2 = softmax(Z1 W2) - I_y; G1 = 1{Z1 > 0} * (G2 W2^T); gradients: Xb^T G1 / b for W1 and "
         "Z1^T G2 / b for W2.",
         "Compute both gradients before updating either weight (W2 is used in G1), then W1 -= lr * ..., "
         "W2 -= lr * ...."]),
    "ml_refresher.softmax_regression_epoch_cpp": (
        "the same softmax regression epoch in C++, on raw row-major float pointers, updating theta in place",
        ["Translate the numpy epoch line by line into loops. Row-major means element (i, j) of an (m, n) matrix "
         "lives at index i * n + j.",
         "Per minibatch of b rows starting at row s: logits[i][c] = sum_j X[(s+i)*n + j] * theta[j*k + c]; softmax "
         "per row (subtract the row max); subtract 1 at the label; grad[j][c] = sum_i X[(s+i)*n + j] * Z[i][c] / b.",
         "Allocate Z (b x k) and the gradient (n x k) as std::vector<float> per minibatch, fill them with nested "
         "for-loops, then theta[j*k + c] -= lr * grad[j*k + c]."]),
})
