"""MLP-ResNet on MNIST (course hw2 `apps/mlp_resnet.py`).

Run `python -m needle.apps.mlp_resnet` to train on the bundled digits (first 8,000 / last 2,000 of
the MNIST test split) and print per-epoch error rates."""
from __future__ import annotations

import argparse
import os
from typing import Optional

import numpy as np

from needle import nn, optim
from needle.apps.training import fit, run_epoch
from needle.data import DataLoader, MNISTDataset, NDArrayDataset, mnist_split

__all__ = ["ResidualBlock", "MLPResNet", "epoch", "train_mnist"]


def ResidualBlock(dim: int, hidden_dim: int, norm=nn.BatchNorm1d, drop_prob: float = 0.1) -> nn.Module:
    """ReLU(x + norm(Linear(Dropout(ReLU(norm(Linear(x))))))), as in the course's figure."""
    return nn.Sequential(
        nn.Residual(
            nn.Sequential(
                nn.Linear(dim, hidden_dim),
                norm(hidden_dim),
                nn.ReLU(),
                nn.Dropout(drop_prob),
                nn.Linear(hidden_dim, dim),
                norm(dim),
            )
        ),
        nn.ReLU(),
    )


def MLPResNet(dim: int, hidden_dim: int = 100, num_blocks: int = 3, num_classes: int = 10, norm=nn.BatchNorm1d,
              drop_prob: float = 0.1) -> nn.Module:
    """Linear -> ReLU -> num_blocks ResidualBlocks(hidden_dim, hidden_dim // 2) -> Linear, created in execution order."""
    return nn.Sequential(
        nn.Linear(dim, hidden_dim),
        nn.ReLU(),
        *[ResidualBlock(hidden_dim, hidden_dim // 2, norm, drop_prob) for _ in range(num_blocks)],
        nn.Linear(hidden_dim, num_classes),
    )


def epoch(dataloader, model: nn.Module, opt=None, *, progress: bool = False) -> tuple[float, float]:
    """One epoch (training when `opt` is given): (average error rate, average loss), as the course returns."""
    np.random.seed(4)
    if opt is None:
        model.eval()
    else:
        model.train()
    total = len(dataloader) if hasattr(dataloader, "__len__") else None
    acc, loss = run_epoch(dataloader, model, nn.SoftmaxLoss(), opt, progress=progress, total=total, desc="mnist")
    return 1.0 - acc, loss


def _mnist_loaders(batch_size: int, data_dir: Optional[str]) -> tuple[DataLoader, DataLoader]:
    """The course's train/t10k files in data_dir (an error naming the missing ones when it lacks any); with
    data_dir=None, the bundled 8,000 / 2,000 split."""
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    if data_dir is not None:
        paths = [os.path.join(data_dir, n) for n in names]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(f"train_mnist: {os.path.abspath(data_dir)} lacks the MNIST files "
                                    f"{', '.join(os.path.basename(p) for p in missing)}; pass data_dir=None to train "
                                    "on the bundled 8,000 / 2,000 split")
        train, test = MNISTDataset(*paths[:2]), MNISTDataset(*paths[2:])
    else:
        (Xtr, ytr), (Xte, yte) = mnist_split()
        train, test = NDArrayDataset(Xtr, ytr), NDArrayDataset(Xte, yte)
    return DataLoader(train, batch_size, shuffle=True), DataLoader(test, batch_size)


def train_mnist(batch_size: int = 100, epochs: int = 10, optimizer=optim.Adam, lr: float = 0.001,
                weight_decay: float = 0.001, hidden_dim: int = 100, data_dir: Optional[str] = "data", *,
                progress: bool = False, history: Optional[list] = None, callback=None) -> tuple:
    """Trains MLPResNet(784, hidden_dim); returns (train_err, train_loss, test_err, test_loss) of the last
    epoch (error rates, as the course's tests expect). Each epoch's four numbers go to `history`/`callback`.
    data_dir: a folder holding the course's four MNIST .gz files (a folder without them is an error naming
    them); None trains on the bundled 8,000 / 2,000 split."""
    np.random.seed(4)
    train_loader, test_loader = _mnist_loaders(batch_size, data_dir)
    model = MLPResNet(784, hidden_dim)
    opt = optimizer(model.parameters(), lr=lr, weight_decay=weight_decay)

    def one_epoch() -> tuple:
        return (*epoch(train_loader, model, opt, progress=progress), *epoch(test_loader, model, progress=progress))

    return fit(epochs, one_epoch, history, callback, names=("train_err", "train_loss", "test_err", "test_loss"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Train the MLP-ResNet on MNIST (bundled 8,000/2,000 split by default)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--hidden-dim", type=int, default=100)
    parser.add_argument("--data-dir", default=None, help="folder with the full MNIST .gz files (default: bundled split)")
    args = parser.parse_args(argv)
    train_mnist(args.batch_size, args.epochs, lr=args.lr, hidden_dim=args.hidden_dim, data_dir=args.data_dir,
                callback=lambda r: print("epoch {epoch:2d}  train err {train_err:.4f} loss {train_loss:.4f}  "
                                         "test err {test_err:.4f} loss {test_loss:.4f}".format(**r), flush=True))


if __name__ == "__main__":
    main()
