"""Training loops for CIFAR-10 and PTB (course hw4 `simple_ml` functions) and the generic epoch they share.

The course-compatible functions keep the course's signatures, defaults and return values
((accuracy, loss) of the last epoch); beyond the course they take keyword-only `progress` (a tqdm.auto
bar), `history` (a list that receives one dict per epoch, so a notebook can plot it) and `callback`
(called with each epoch's dict, e.g. to update a live plot)."""
from __future__ import annotations

from typing import Callable, Iterable, Optional

import numpy as np

from needle import nn, optim
from needle.autograd import Tensor
from needle.data import get_batch

__all__ = [
    "run_epoch",
    "fit",
    "epoch_general_cifar10",
    "train_cifar10",
    "evaluate_cifar10",
    "epoch_general_ptb",
    "train_ptb",
    "evaluate_ptb",
]


def _progress(iterable: Iterable, enabled: bool, total: Optional[int], desc: Optional[str]) -> Iterable:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


def run_epoch(batches: Iterable, forward: Callable[[Tensor], Tensor], loss_fn, opt=None, clip: Optional[float] = None,
              progress: bool = False, total: Optional[int] = None, desc: Optional[str] = None) -> tuple[float, float]:
    """One pass over (X, y) batches: logits = forward(X), loss = loss_fn(logits, y); with `opt`, a backward
    pass, optional gradient clipping and an optimizer step per batch. Returns (accuracy, loss) averaged
    over samples. A data-parallel `forward` (DistributedDataParallel) averages the gradients over the ranks
    after each backward, and the returned averages are over the samples of all ranks."""
    sync = getattr(forward, "sync_gradients", None)
    correct = loss_sum = 0.0
    count = 0
    for X, y in _progress(batches, progress, total, desc):
        logits = forward(X)
        loss = loss_fn(logits, y)
        if opt is not None:
            opt.reset_grad()
            loss.backward()
            if sync is not None:
                sync()
            if clip is not None:
                opt.clip_grad_norm(clip)
            opt.step()
        labels = y.numpy()
        n = labels.shape[0]
        correct += float((logits.numpy().argmax(axis=1) == labels).sum())
        loss_sum += float(loss.numpy()) * n
        count += n
    if sync is not None:
        correct, loss_sum, count = forward.reduce_sums(correct, loss_sum, count)
    if count == 0:
        raise ValueError("run_epoch: no batches")
    return correct / count, loss_sum / count


def fit(n_epochs: int, train_epoch: Callable[[], tuple], history: Optional[list] = None,
        callback: Optional[Callable[[dict], None]] = None, names: tuple = ("acc", "loss")) -> tuple:
    """Calls train_epoch() n_epochs times; records {"epoch": e, names[0]: ..., names[1]: ...} per epoch
    into `history` and passes it to `callback`. Returns the last epoch's result."""
    result = None
    for e in range(n_epochs):
        result = train_epoch()
        record = {"epoch": e + 1, **dict(zip(names, result))}
        if history is not None:
            history.append(record)
        if callback is not None:
            callback(record)
    return result


def _set_mode(model: nn.Module, opt) -> None:
    if opt is None:
        model.eval()
    else:
        model.train()


def epoch_general_cifar10(dataloader, model: nn.Module, loss_fn=nn.SoftmaxLoss(), opt=None, *,
                          progress: bool = False) -> tuple[float, float]:
    """One epoch over a CIFAR-10 loader (training when `opt` is given): (average accuracy, average loss)."""
    np.random.seed(4)
    _set_mode(model, opt)
    total = len(dataloader) if hasattr(dataloader, "__len__") else None
    return run_epoch(dataloader, model, loss_fn, opt, progress=progress, total=total, desc="cifar10")


def train_cifar10(model: nn.Module, dataloader, n_epochs: int = 1, optimizer=optim.Adam, lr: float = 0.001,
                  weight_decay: float = 0.001, loss_fn=nn.SoftmaxLoss, *, progress: bool = False,
                  history: Optional[list] = None, callback=None) -> tuple[float, float]:
    """Trains for n_epochs; returns (accuracy, loss) of the last training epoch."""
    np.random.seed(4)
    opt = optimizer(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss = loss_fn()
    return fit(n_epochs, lambda: epoch_general_cifar10(dataloader, model, loss, opt, progress=progress),
               history, callback)


def evaluate_cifar10(model: nn.Module, dataloader, loss_fn=nn.SoftmaxLoss, *, progress: bool = False) -> tuple:
    """(accuracy, loss) of the model in eval mode over the loader."""
    np.random.seed(4)
    return epoch_general_cifar10(dataloader, model, loss_fn(), progress=progress)


def _detach_state(h):
    """Cuts the recurrent state from the previous batch's graph (truncated backpropagation through time)."""
    if h is None:
        return None
    if isinstance(h, (tuple, list)):
        return tuple(x.detach() for x in h)
    return h.detach()


def epoch_general_ptb(data: np.ndarray, model: nn.Module, seq_len: int = 40, loss_fn=nn.SoftmaxLoss(), opt=None,
                      clip: Optional[float] = None, device=None, dtype: str = "float32", *,
                      progress: bool = False) -> tuple[float, float]:
    """One epoch over batchified PTB ids (nbatch, bs) in chunks of seq_len, carrying the hidden state
    between chunks (detached): (average accuracy, average loss) per predicted word."""
    np.random.seed(4)
    _set_mode(model, opt)
    starts = range(0, data.shape[0] - 1, seq_len)
    batches = (get_batch(data, i, seq_len, device=device, dtype=dtype) for i in starts)
    state = {"h": None}

    def forward(X: Tensor) -> Tensor:
        out, h = model(X, state["h"])
        state["h"] = _detach_state(h)
        return out

    return run_epoch(batches, forward, loss_fn, opt, clip, progress=progress, total=len(starts), desc="ptb")


def train_ptb(model: nn.Module, data: np.ndarray, seq_len: int = 40, n_epochs: int = 1, optimizer=optim.SGD,
              lr: float = 4.0, weight_decay: float = 0.0, loss_fn=nn.SoftmaxLoss, clip: Optional[float] = None,
              device=None, dtype: str = "float32", *, progress: bool = False, history: Optional[list] = None,
              callback=None) -> tuple[float, float]:
    """Trains a language model for n_epochs; returns (accuracy, loss) of the last epoch."""
    np.random.seed(4)
    opt = optimizer(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss = loss_fn()
    return fit(n_epochs, lambda: epoch_general_ptb(data, model, seq_len, loss, opt, clip, device, dtype,
                                                   progress=progress), history, callback)


def evaluate_ptb(model: nn.Module, data: np.ndarray, seq_len: int = 40, loss_fn=nn.SoftmaxLoss, device=None,
                 dtype: str = "float32", *, progress: bool = False) -> tuple[float, float]:
    """(accuracy, loss) of the model in eval mode over batchified PTB ids."""
    np.random.seed(4)
    return epoch_general_ptb(data, model, seq_len, loss_fn(), device=device, dtype=dtype, progress=progress)


def _print_epoch(prefix: str):
    def show(record: dict) -> None:
        print(prefix + "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()),
              flush=True)

    return show


def _parallel(model: nn.Module, distributed: bool) -> tuple[nn.Module, int, int]:
    """(model, world size, rank): the model wrapped for data-parallel training over MPI when `distributed`."""
    if not distributed:
        return model, 1, 0
    from needle import distributed as dist

    dist.init()
    return dist.DistributedDataParallel(model), dist.world_size(), dist.rank()


def _mnist(args) -> None:
    """MLP-ResNet on the bundled MNIST split (the first --max-samples of each part)."""
    from needle.apps.mlp_resnet import MLPResNet, epoch
    from needle.data import DataLoader, NDArrayDataset, mnist_split

    norm = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm1d}[args.norm]
    model, n, r = _parallel(MLPResNet(784, args.hidden or 100, norm=norm, drop_prob=args.drop), args.distributed)
    (Xtr, ytr), (Xte, yte) = mnist_split()
    bs = args.batch_size or 100
    m = args.max_samples
    train = DataLoader(NDArrayDataset(Xtr[:m], ytr[:m]), bs, shuffle=True, num_replicas=n, rank=r)
    test = DataLoader(NDArrayDataset(Xte[:m], yte[:m]), bs, num_replicas=n, rank=r)
    if args.optimizer == "sgd":
        opt = optim.SGD(model.parameters(), lr=args.lr or 0.1, momentum=0.9, weight_decay=0.001)
    else:
        opt = optim.Adam(model.parameters(), lr=args.lr or 0.001, weight_decay=0.001)
    fit(args.epochs, lambda: (*epoch(train, model, opt), *epoch(test, model)), None,
        _recorder(args.history, r, _print_epoch("")),
        names=("train_err", "train_loss", "test_err", "test_loss"))
    if args.save and r == 0:
        np.savez(args.save, *[p.numpy() for p in model.parameters()])


def _recorder(path: Optional[str], rank: int, show: Callable[[dict], None]) -> Callable[[dict], None]:
    """An epoch callback that prints (rank 0 only) and, with `path`, rewrites the JSON list of epochs there."""
    import json

    records: list = []

    def record(entry: dict) -> None:
        if rank != 0:
            return
        show(entry)
        records.append(entry)
        if path:
            with open(path, "w") as f:
                json.dump(records, f)

    return record


def main(argv=None) -> None:
    """Real runs: `python -m needle.apps.training cifar10 --epochs 3` trains ResNet9 on the bundled CIFAR-10
    subset; `python -m needle.apps.training ptb --model lstm --max-lines 2000` trains a language model on PTB;
    `python -m needle.apps.training mnist` trains the MLP-ResNet on the bundled MNIST split. With --distributed,
    under `mpirun -n N` (one machine, or several through MPI's hostfile), cifar10 and mnist train data-parallel:
    each of the N ranks takes --batch-size samples of every step's N * batch-size."""
    import argparse

    from needle.apps.models import LanguageModel, ResNet9
    from needle.data import CIFAR10Dataset, Corpus, DataLoader, batchify

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("task", choices=["cifar10", "ptb", "mnist"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="default: 128 (cifar10), 16 (ptb)")
    parser.add_argument("--lr", type=float, default=None, help="default: 0.001 Adam (cifar10), 4.0 SGD (ptb)")
    parser.add_argument("--model", choices=["rnn", "lstm", "transformer"], default="lstm")
    parser.add_argument("--max-lines", type=int, default=2000, help="PTB lines per split (ptb)")
    parser.add_argument("--seq-len", type=int, default=20)
    parser.add_argument("--embedding", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=None, help="default: 64 (ptb), 100 (mnist)")
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--distributed", action="store_true", help="cifar10, mnist: data-parallel over mpirun's ranks")
    parser.add_argument("--norm", choices=["batch", "layer"], default="batch", help="mnist: the blocks' normalization")
    parser.add_argument("--drop", type=float, default=0.1, help="mnist: dropout probability")
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam",
                        help="mnist: Adam (lr 0.001) or SGD with momentum 0.9 (lr 0.1)")
    parser.add_argument("--max-samples", type=int, default=None, help="mnist: first samples of each split")
    parser.add_argument("--history", default=None, help="mnist: write the epochs' numbers to this JSON file")
    parser.add_argument("--save", default=None, help="mnist: save the trained parameters to this .npz file")
    args = parser.parse_args(argv)
    if args.distributed and args.task == "ptb":
        parser.error("--distributed: ptb trains on batchified streams, not a DataLoader; use cifar10 or mnist")
    np.random.seed(0)
    if args.task == "mnist":
        _mnist(args)
        return
    if args.task == "cifar10":
        bs = args.batch_size or 128
        model, n, r = _parallel(ResNet9(), args.distributed)
        train = DataLoader(CIFAR10Dataset(train=True), bs, shuffle=True, num_replicas=n, rank=r)
        test = DataLoader(CIFAR10Dataset(train=False), bs, num_replicas=n, rank=r)
        show = _recorder(None, r, _print_epoch("train  "))
        train_cifar10(model, train, args.epochs, lr=args.lr or 0.001, progress=args.progress and r == 0,
                      callback=show)
        acc, loss = evaluate_cifar10(model, test, progress=args.progress and r == 0)
        if r == 0:
            print(f"test  acc {acc:.4f}  loss {loss:.4f}")
        return
    corpus = Corpus(max_lines=args.max_lines)
    bs = args.batch_size or 16
    train, test = batchify(corpus.train, bs), batchify(corpus.test, bs)
    model = LanguageModel(args.embedding, len(corpus.dictionary), args.hidden or 64, args.layers, seq_model=args.model,
                          seq_len=args.seq_len)
    optimizer = optim.SGD if args.model != "transformer" else optim.Adam
    lr = args.lr or (4.0 if args.model != "transformer" else 0.003)
    print(f"PTB: {len(corpus.dictionary)} words, train {train.shape}, test {test.shape}, {args.model}", flush=True)
    train_ptb(model, train, args.seq_len, args.epochs, optimizer=optimizer, lr=lr, clip=0.25 if optimizer is optim.SGD
              else None, progress=args.progress, callback=_print_epoch("train  "))
    acc, loss = evaluate_ptb(model, test, args.seq_len, progress=args.progress)
    print(f"test  acc {acc:.4f}  loss {loss:.4f}  perplexity {np.exp(loss):.1f}")


if __name__ == "__main__":
    main()
