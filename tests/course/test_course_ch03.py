"""Chapter 03 checks: each passes needle's reference, reports a stub as not implemented, and fails a plausible mistake."""
import math

import numpy as np
import pytest

import needle as ndl
from needle import course, init, nn, ops
from needle.course import install
from needle.course.errors import CheckFailed

from chapter_cases import ref

IDS = course.exercises("nn_library")


# --- one plausible mistake per exercise ---------------------------------------------------------------------------

def xavier_uniform_fan_in_only(fan_in, fan_out, gain=1.0, **kwargs):
    a = gain * math.sqrt(6 / fan_in)
    return init.rand(fan_in, fan_out, low=-a, high=a, **kwargs)


def xavier_normal_without_gain(fan_in, fan_out, gain=1.0, **kwargs):
    return init.randn(fan_in, fan_out, std=math.sqrt(2 / (fan_in + fan_out)), **kwargs)


def kaiming_uniform_without_gain(fan_in, fan_out, nonlinearity="relu", **kwargs):
    b = math.sqrt(3 / fan_in)
    return init.rand(fan_in, fan_out, low=-b, high=b, **kwargs)


def kaiming_normal_variance_as_std(fan_in, fan_out, nonlinearity="relu", **kwargs):
    return init.randn(fan_in, fan_out, std=2 / fan_in, **kwargs)


class LinearBiasFirst(nn.Module):
    """Draws the bias before the weight: the numbers differ from the course's."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype="float32"):
        super().__init__()
        self.bias = nn.Parameter(init.kaiming_uniform(out_features, 1, dtype=dtype).reshape((1, out_features)))
        self.weight = nn.Parameter(init.kaiming_uniform(in_features, out_features, dtype=dtype))

    def forward(self, X):
        return X @ self.weight + self.bias.broadcast_to((X.shape[0], self.bias.shape[1]))


class ReLUOnNumpy(nn.Module):
    """Computes on numpy and wraps a new Tensor: right values, but no gradient reaches the input."""

    def forward(self, x):
        return ndl.Tensor(np.maximum(x.numpy(), 0), dtype=x.dtype)


class SequentialReversed(nn.Module):
    def __init__(self, *modules):
        super().__init__()
        self.modules = modules

    def forward(self, x):
        for m in reversed(self.modules):
            x = m(x)
        return x


def logsumexp_without_max(self, Z):
    return ndl.backend_selection.array_api.log(ndl.backend_selection.array_api.exp(Z).sum(self.axes))


def logsoftmax_without_max(self, Z):
    api = ndl.backend_selection.array_api
    return Z - api.broadcast_to(api.reshape(api.log(api.sum(api.exp(Z), axis=(1,))), (Z.shape[0], 1)), Z.shape)


def logsoftmax_gradient_identity(self, out_grad, node):
    return out_grad + 0


def logsumexp_gradient_without_softmax(self, out_grad, node):
    z = node.inputs[0]
    axes = range(len(z.shape)) if self.axes is None else self.axes
    kept = tuple(1 if i in axes else n for i, n in enumerate(z.shape))
    return out_grad.reshape(kept).broadcast_to(z.shape)


class SoftmaxLossSummed(nn.Module):
    """Sums over the batch instead of averaging."""

    def forward(self, logits, y):
        one_hot = init.one_hot(logits.shape[1], y, dtype=logits.dtype)
        return (ops.logsumexp(logits, axes=(1,)) - (logits * one_hot).sum((1,))).sum()


def _layernorm_unbiased_forward(self, x):
    n, d = x.shape
    mean = (x.sum((1,)) / d).reshape((n, 1)).broadcast_to(x.shape)
    var = (((x - mean) ** 2).sum((1,)) / (d - 1)).reshape((n, 1)).broadcast_to(x.shape)
    y = (x - mean) / (var + self.eps) ** 0.5
    return self.weight.reshape((1, d)).broadcast_to(x.shape) * y + self.bias.reshape((1, d)).broadcast_to(x.shape)


LayerNormUnbiased = type("LayerNormUnbiased", (nn.LayerNorm1d,), {"forward": _layernorm_unbiased_forward})


class FlattenKeepsLastAxis(nn.Module):
    def forward(self, X):
        return X.reshape((int(np.prod(X.shape[:-1])), X.shape[-1]))


class BatchNormUnbiasedRunningVar(nn.BatchNorm1d):
    """The notebook's wording (unbiased running variance), which the course's golden values reject."""

    def _update(self, running, observed):
        if running is self.running_var:
            n = self._batch
            observed = observed * (n / (n - 1))
        return install.reference("needle.nn.nn_basic:BatchNorm1d._update")(self, running, observed)

    def forward(self, x):
        self._batch = x.shape[0]
        return install.reference("needle.nn.nn_basic:BatchNorm1d.forward")(self, x)


class DropoutKeepsP(nn.Module):
    """Keeps each entry with probability p instead of 1 - p."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training:
            return x
        return x * init.randb(*x.shape, p=self.p) / (1 - self.p)


class ResidualWithoutSkip(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class SGDTorchMomentum(ndl.optim.Optimizer):
    """PyTorch's undampened momentum u = m u + g; the course dampens it with (1 - m)."""

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0):
        super().__init__(params)
        self.lr, self.momentum, self.weight_decay, self.u = lr, momentum, weight_decay, {}

    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad.data + self.weight_decay * p.data
            self.u[i] = self.momentum * self.u.get(i, 0) + g
            p.data = p.data - self.lr * self.u[i]


class AdamWithoutBiasCorrection(ndl.optim.Optimizer):
    def __init__(self, params, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        self.lr, self.beta1, self.beta2, self.eps, self.weight_decay = lr, beta1, beta2, eps, weight_decay
        self.m, self.v = {}, {}

    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad.data + self.weight_decay * p.data
            self.m[i] = self.beta1 * self.m.get(i, 0) + (1 - self.beta1) * g
            self.v[i] = self.beta2 * self.v.get(i, 0) + (1 - self.beta2) * g * g
            p.data = p.data - self.lr * self.m[i] / (self.v[i] ** 0.5 + self.eps)


class FlipRows(ndl.data.Transform):
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        return img[::-1] if np.random.rand() < self.p else img


class CropShiftsSwapped(ndl.data.Transform):
    def __init__(self, padding=3):
        self.padding = padding

    def __call__(self, img):
        p = self.padding
        shift_x, shift_y = np.random.randint(low=-p, high=p + 1, size=2)
        h, w = img.shape[:2]
        padded = np.pad(img, ((p, p), (p, p), (0, 0)))
        return padded[p + shift_y:p + shift_y + h, p + shift_x:p + shift_x + w, :]


class MNISTRawPixels(ndl.data.Dataset):
    """Forgets to scale the pixels to [0, 1]."""

    def __init__(self, image_filename, label_filename, transforms=None):
        super().__init__(transforms)
        self.images = ndl.data.read_idx(image_filename).reshape(-1, 784).astype(np.float32)
        self.labels = ndl.data.read_idx(label_filename)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]

    def __len__(self):
        return len(self.labels)


class DataLoaderShufflesOnce(ndl.data.DataLoader):
    """Draws the permutation once, in the constructor: every epoch sees the same order."""

    def __iter__(self):
        if self.shuffle and not hasattr(self, "_fixed"):
            self._fixed = np.array_split(np.random.permutation(len(self.dataset)),
                                         range(self.batch_size, len(self.dataset), self.batch_size))
        for batch in (self._fixed if self.shuffle else self.ordering):
            yield tuple(ndl.Tensor(a, requires_grad=False) for a in self.dataset[batch])


def residual_block_without_final_relu(dim, hidden_dim, norm=nn.BatchNorm1d, drop_prob=0.1):
    return nn.Sequential(nn.Residual(nn.Sequential(nn.Linear(dim, hidden_dim), norm(hidden_dim), nn.ReLU(),
                                                   nn.Dropout(drop_prob), nn.Linear(hidden_dim, dim), norm(dim))))


def mlp_resnet_full_width_blocks(dim, hidden_dim=100, num_blocks=3, num_classes=10, norm=nn.BatchNorm1d, drop_prob=0.1):
    from needle.apps.mlp_resnet import ResidualBlock
    return nn.Sequential(nn.Linear(dim, hidden_dim), nn.ReLU(),
                         *[ResidualBlock(hidden_dim, hidden_dim, norm, drop_prob) for _ in range(num_blocks)],
                         nn.Linear(hidden_dim, num_classes))


def epoch_returning_accuracy(dataloader, model, opt=None):
    err, loss = ref("nn_library.epoch")(dataloader, model, opt)
    return 1 - err, loss


def train_mnist_ignoring_lr(batch_size=100, epochs=10, optimizer=ndl.optim.Adam, lr=0.001, weight_decay=0.001,
                            hidden_dim=100, data_dir="data"):
    return ref("nn_library.train_mnist")(batch_size, epochs, optimizer, 0.001, weight_decay, hidden_dim, data_dir)


WRONG = {
    "xavier_uniform": xavier_uniform_fan_in_only,
    "xavier_normal": xavier_normal_without_gain,
    "kaiming_uniform": kaiming_uniform_without_gain,
    "kaiming_normal": kaiming_normal_variance_as_std,
    "Linear": LinearBiasFirst,
    "ReLU": ReLUOnNumpy,
    "Sequential": SequentialReversed,
    "LogSumExp.compute": logsumexp_without_max,
    "LogSumExp.gradient": logsumexp_gradient_without_softmax,
    "LogSoftmax.compute": logsoftmax_without_max,
    "LogSoftmax.gradient": logsoftmax_gradient_identity,
    "SoftmaxLoss": SoftmaxLossSummed,
    "LayerNorm1d": LayerNormUnbiased,
    "Flatten": FlattenKeepsLastAxis,
    "BatchNorm1d": BatchNormUnbiasedRunningVar,
    "Dropout": DropoutKeepsP,
    "Residual": ResidualWithoutSkip,
    "SGD": SGDTorchMomentum,
    "Adam": AdamWithoutBiasCorrection,
    "RandomFlipHorizontal": FlipRows,
    "RandomCrop": CropShiftsSwapped,
    "MNISTDataset": MNISTRawPixels,
    "DataLoader": DataLoaderShufflesOnce,
    "ResidualBlock": residual_block_without_final_relu,
    "MLPResNet": mlp_resnet_full_width_blocks,
    "epoch": epoch_returning_accuracy,
    "train_mnist": train_mnist_ignoring_lr,
}


def test_every_hw2_question_is_an_exercise():
    assert sorted(f"nn_library.{name}" for name in WRONG) == sorted(IDS)


@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_passes(exercise_id, capsys):
    course.exercise(exercise_id)(ref(exercise_id))
    course.check(exercise_id)
    assert capsys.readouterr().out.startswith(f"✓ {exercise_id}:")


class StubModule(nn.Module):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("not implemented yet: the goal")


def stub(*args, **kwargs):
    raise NotImplementedError("not implemented yet: the goal")


@pytest.mark.parametrize("exercise_id", IDS)
def test_stub_keeps_the_reference_and_is_not_attempted(exercise_id, capsys):
    reference = ref(exercise_id)
    returned = course.exercise(exercise_id)(StubModule if isinstance(reference, type) else stub)
    assert returned is reference and course.installed_ids() == []
    course.check(exercise_id)
    assert f"◦ {exercise_id}: not attempted yet" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", IDS)
def test_a_plausible_mistake_fails(exercise_id):
    course.exercise(exercise_id)(WRONG[exercise_id.split(".", 1)[1]])
    with pytest.raises(CheckFailed) as failure:
        course.check(exercise_id)
    assert exercise_id in str(failure.value)


def test_a_learner_class_with_zero_argument_super_is_installed_and_used():
    class Linear(nn.Module):  # written from scratch, as in the notebook
        def __init__(self, in_features, out_features, bias=True, device=None, dtype="float32"):
            super().__init__()
            self.in_features, self.out_features = in_features, out_features
            self.weight = nn.Parameter(init.kaiming_uniform(in_features, out_features, dtype=dtype))
            self.bias = nn.Parameter(init.kaiming_uniform(out_features, 1, dtype=dtype).reshape((1, out_features))) \
                if bias else None

        def forward(self, X):
            lead = X.shape[:-1]
            out = X.reshape((int(np.prod(lead)), self.in_features)) @ self.weight
            if self.bias is not None:
                out = out + self.bias.broadcast_to(out.shape)
            return out.reshape((*lead, self.out_features))

    course.exercise("nn_library.Linear")(Linear)
    course.check("nn_library.Linear")
    model = nn.Sequential(nn.Linear(3, 2))  # the reference class now runs the learner's methods
    assert model.modules[0].in_features == 3 and model(ndl.Tensor(np.ones((4, 3)))).shape == (4, 2)
