"""Chapter 03, Q5: ResidualBlock, MLPResNet, epoch and train_mnist against the course's golden values."""
from __future__ import annotations

import gzip
import os
import struct
import tempfile
from typing import Any, Callable

import numpy as np

import needle as ndl
from needle import nn
from needle.data.datasets.mnist_dataset import read_idx

from ...compare import expect, expect_close
from ...install import reference
from ...registry import exercise_check
from ...tensors import GRAPH_GROWS, graph_size
from .common import APP, TOL, mnist_files


def _num_params(model: Any) -> int:
    return int(sum(np.prod(p.shape) for p in model.parameters()))


@exercise_check("nn_library.ResidualBlock", target=f"{APP}:ResidualBlock",
                hint="Sequential(Residual(Sequential(Linear(dim, hidden), norm(hidden), ReLU(), Dropout(drop_prob), "
                     "Linear(hidden, dim), norm(dim))), ReLU())")
def check_residual_block(ResidualBlock: Callable) -> int:
    for args, count in (((15, 2, nn.BatchNorm1d), 111), ((784, 100, nn.LayerNorm1d), 159452)):
        got = _num_params(ResidualBlock(*args))
        expect(got == count, f"ResidualBlock{args[:2]} with {args[2].__name__}: {got} parameters, expected {count}")
    np.random.seed(2)
    x = ndl.Tensor(np.random.randn(1, 15))
    expect_close(ResidualBlock(15, 10, nn.LayerNorm1d, 0.5)(x).numpy()[0, :4], [0.0, 1.358399, 0.0, 1.384224],
                 what="ResidualBlock(15, 10, LayerNorm1d, 0.5) after seed 2 (course golden value)", **TOL)
    return 3


@exercise_check("nn_library.MLPResNet", target=f"{APP}:MLPResNet",
                hint="Sequential(Linear(dim, hidden_dim), ReLU(), *[ResidualBlock(hidden_dim, hidden_dim // 2, norm, "
                     "drop_prob) for each block], Linear(hidden_dim, num_classes)), created in this order")
def check_mlp_resnet(MLPResNet: Callable) -> int:
    for args, count in (((150, 100, 5, 10, nn.LayerNorm1d), 68360), ((10, 100, 1, 100, nn.BatchNorm1d), 21650)):
        got = _num_params(MLPResNet(*args))
        expect(got == count, f"MLPResNet{args[:4]} with {args[4].__name__}: {got} parameters, expected {count}")
    np.random.seed(4)
    x = ndl.Tensor(np.random.randn(2, 15), dtype="float32")
    expect_close(MLPResNet(15, 25, 5, 14, nn.BatchNorm1d, 0.0)(x).numpy()[0, :4],
                 [0.92448235, -2.745743, -1.5077105, 1.130784],
                 what="MLPResNet(15, 25, 5, 14, BatchNorm1d, 0.0) after seed 4 (course golden value)", **TOL)
    return 3


def _small_mnist(count: int) -> ndl.data.NDArrayDataset:
    (X, y), _ = ndl.data.mnist_split()
    return ndl.data.NDArrayDataset(X[:count], y[:count])


@exercise_check("nn_library.epoch", target=f"{APP}:epoch",
                hint="np.random.seed(4); model.train() if opt else model.eval(); per batch: loss = SoftmaxLoss(model(X), y), "
                     "with opt: reset_grad, backward, step; return (error rate, mean loss) over samples")
def check_epoch(epoch: Callable) -> int:
    np.random.seed(1)
    MLPResNet = reference(f"{APP}:MLPResNet")
    model = MLPResNet(784, 10)
    model.train()
    loader = ndl.data.DataLoader(ndl.data.MNISTDataset(*mnist_files()), batch_size=150, shuffle=False)
    got = epoch(loader, model)
    expect(isinstance(got, tuple) and len(got) == 2, "epoch must return (error rate, average loss)")
    expect(not model.training, "epoch without an optimizer must put the model in eval mode")
    expect_close(got, [0.9164, 4.137814], what="evaluation epoch of MLPResNet(784, 10) on t10k, batch 150 (course golden)",
                 **TOL)
    results = []
    for run in (epoch, reference(f"{APP}:epoch")):
        np.random.seed(0)
        model = MLPResNet(784, 16, num_blocks=1)
        opt = ndl.optim.SGD(model.parameters(), lr=0.05)
        results.append((run(ndl.data.DataLoader(_small_mnist(300), batch_size=64, shuffle=True), model, opt),
                        model.parameters()[0].numpy()))
        expect(model.training, "epoch with an optimizer must put the model in training mode")
    expect_close(results[0][0], results[1][0], what="training epoch (error rate, loss): MLPResNet(784, 16, 1), SGD, "
                                                    "300 digits, batch 64, np.random.seed(4) at the start", **TOL)
    expect(all(isinstance(v, (float, int, np.floating, np.integer)) for v in results[0][0]),
           f"epoch returned {[type(v).__name__ for v in results[0][0]]}: return plain numbers (float(loss.numpy())), "
           "not Tensors, which keep every batch's graph alive")
    sizes = []
    np.random.seed(0)
    model = MLPResNet(784, 16, num_blocks=1)
    opt = ndl.optim.SGD(model.parameters(), lr=0.05)
    for batches in (2, 4):
        epoch(ndl.data.DataLoader(_small_mnist(64 * batches), batch_size=64), model, opt)
        sizes.append(graph_size(model, opt))
    expect(sizes[1] <= sizes[0], "epoch: " + GRAPH_GROWS.format(sizes=sizes).replace("step", "batch", 1))
    expect_close(results[0][1], results[1][1], what="first weight after the training epoch", **TOL)
    return 3


def _write_course_mnist(folder: str, train: int, test: int) -> None:
    """The course's four MNIST files (IDX, gzip) in `folder`, holding the first train + test bundled digits."""
    images, labels = (read_idx(f) for f in mnist_files())
    for split, rows in (("train", slice(0, train)), ("t10k", slice(train, train + test))):
        for kind, array, magic in (("images-idx3", images[rows], 2051), ("labels-idx1", labels[rows], 2049)):
            with gzip.open(os.path.join(folder, f"{split}-{kind}-ubyte.gz"), "wb") as f:
                f.write(struct.pack(f">{array.ndim + 1}I", magic, *array.shape) + array.tobytes())


@exercise_check("nn_library.train_mnist", target=f"{APP}:train_mnist",
                hint="np.random.seed(4); MNISTDataset of data_dir's train-* and t10k-* files, a shuffled train and an "
                     "unshuffled test DataLoader, MLPResNet(784, hidden_dim), optimizer(params, lr=lr, weight_decay="
                     "weight_decay); each epoch: epoch(train, model, opt); return (*train result, *epoch(test, model))")
def check_train_mnist(train_mnist: Callable) -> int:
    with tempfile.TemporaryDirectory() as folder:
        _write_course_mnist(folder, 400, 100)
        got = train_mnist(batch_size=100, epochs=2, optimizer=ndl.optim.SGD, lr=0.01, weight_decay=0.001,
                          hidden_dim=16, data_dir=folder)
        expect(isinstance(got, tuple) and len(got) == 4,
               "train_mnist must return (train_err, train_loss, test_err, test_loss)")
        expect(all(isinstance(v, (float, int, np.floating, np.integer)) for v in got),
               f"train_mnist returned {[type(v).__name__ for v in got]}: return plain numbers, not Tensors (a Tensor "
               "keeps its whole graph alive)")
        np.random.seed(4)
        train, test = (ndl.data.MNISTDataset(os.path.join(folder, f"{s}-images-idx3-ubyte.gz"),
                                             os.path.join(folder, f"{s}-labels-idx1-ubyte.gz")) for s in ("train", "t10k"))
    epoch = reference(f"{APP}:epoch")
    train_loader, test_loader = ndl.data.DataLoader(train, 100, shuffle=True), ndl.data.DataLoader(test, 100)
    model = reference(f"{APP}:MLPResNet")(784, 16)
    opt = ndl.optim.SGD(model.parameters(), lr=0.01, weight_decay=0.001)
    for _ in range(2):
        train_result = epoch(train_loader, model, opt)
    expect_close(got, (*train_result, *epoch(test_loader, model)),
                 what="train_mnist(100, 2, SGD, lr=0.01, weight_decay=0.001, hidden_dim=16) on 400 train / 100 test "
                      "digits in data_dir (course file names)", **TOL)
    return 1
