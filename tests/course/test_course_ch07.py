"""Chapter 07 checks: each passes needle's reference and the textbook's solution, reports a stub as not attempted, and
fails the classic mistakes (several per exercise) with a message that names the exercise."""
import math

import numpy as np
import pytest

import needle as ndl
from needle import course, init, nn, ops
from needle.autograd import TensorOp
from needle.backend_ndarray import NDArray
from needle.backend_selection import array_api
from needle.course.errors import CheckFailed

from chapter_cases import ChapterContract, ref


# --- planted mistakes ---------------------------------------------------------------------------------------------

def pad_left_only(self, axes):
    shape = tuple(n + left for n, (left, _) in zip(self.shape, axes))
    out = self.device.full(shape, 0.0, dtype=self.dtype)
    out[tuple(slice(left, left + n) for n, (left, _) in zip(self.shape, axes))] = self
    return out


def pad_at_the_start(self, axes):
    shape = tuple(n + l + r for n, (l, r) in zip(self.shape, axes))
    out = self.device.full(shape, 0.0, dtype=self.dtype)
    out[tuple(slice(0, n) for n in self.shape)] = self
    return out


def pad_always_float32(self, axes):
    shape = tuple(n + l + r for n, (l, r) in zip(self.shape, axes))
    out = self.device.full(shape, 0.0)
    out[tuple(slice(l, l + n) for n, (l, _) in zip(self.shape, axes))] = self
    return out


def flip_without_offset(self, axes):
    strides = list(self.strides)
    for ax in axes:
        strides[ax] = -strides[ax]
    return NDArray.make(self.shape, tuple(strides), device=self.device, handle=self._handle, offset=self._offset).compact()


def flip_offset_from_zero(self, axes):
    """Ignores the view's own offset: right for a fresh array, wrong for a[1:]."""
    offset, strides = 0, list(self.strides)
    for ax in axes:
        offset += (self.shape[ax] - 1) * strides[ax]
        strides[ax] = -strides[ax]
    return NDArray.make(self.shape, tuple(strides), device=self.device, handle=self._handle, offset=offset).compact()


def flip_not_compacted(self, axes):
    offset, strides = self._offset, list(self.strides)
    for ax in axes:
        offset += (self.shape[ax] - 1) * strides[ax]
        strides[ax] = -strides[ax]
    return NDArray.make(self.shape, tuple(strides), device=self.device, handle=self._handle, offset=offset)


class FlipGradientIdentity(TensorOp):
    def __init__(self, axes=None):
        self.axes = axes

    def compute(self, a):
        return array_api.flip(a, self.axes)

    def gradient(self, out_grad, node):
        return out_grad


class FlipGradientOnNumpy(TensorOp):
    """Right numbers, but the gradient is a constant: it cannot be differentiated again."""

    def __init__(self, axes=None):
        self.axes = axes

    def compute(self, a):
        return array_api.flip(a, self.axes)

    def gradient(self, out_grad, node):
        return ndl.Tensor(np.flip(out_grad.numpy(), self.axes).copy(), dtype=out_grad.dtype)


def _steps(axes, ndim, step, start=None):
    return tuple(slice(start, None, step) if i in axes else slice(None) for i in range(ndim))


class DilateZerosBefore(TensorOp):
    """Puts the zeros before each element instead of after it."""

    def __init__(self, axes, dilation):
        self.axes, self.dilation = axes, dilation

    def compute(self, a):
        step = self.dilation + 1
        out = a.device.full(tuple(n * step if i in self.axes else n for i, n in enumerate(a.shape)), 0.0, dtype=a.dtype)
        out[_steps(self.axes, a.ndim, step, self.dilation)] = a
        return out

    def gradient(self, out_grad, node):
        return ops.undilate(out_grad, self.axes, self.dilation)


class DilateWithoutTrailingZeros(TensorOp):
    """The textbook picture of dilation (n + (n - 1) d), not the course's n (1 + d)."""

    def __init__(self, axes, dilation):
        self.axes, self.dilation = axes, dilation

    def compute(self, a):
        step = self.dilation + 1
        shape = tuple(n * step - self.dilation if i in self.axes else n for i, n in enumerate(a.shape))
        out = a.device.full(shape, 0.0, dtype=a.dtype)
        out[_steps(self.axes, a.ndim, step)] = a
        return out

    def gradient(self, out_grad, node):
        return ops.undilate(out_grad, self.axes, self.dilation)


class DilateGradientDilates(TensorOp):
    def __init__(self, axes, dilation):
        self.axes, self.dilation = axes, dilation

    def compute(self, a):
        step = self.dilation + 1
        out = a.device.full(tuple(n * step if i in self.axes else n for i, n in enumerate(a.shape)), 0.0, dtype=a.dtype)
        out[_steps(self.axes, a.ndim, step)] = a
        return out

    def gradient(self, out_grad, node):
        return ops.dilate(out_grad, self.axes, self.dilation)


class UnDilateStepOfDilation(TensorOp):
    """Steps by `dilation` instead of `dilation + 1`."""

    def __init__(self, axes, dilation):
        self.axes, self.dilation = axes, dilation

    def compute(self, a):
        return a[_steps(self.axes, a.ndim, max(self.dilation, 1))]

    def gradient(self, out_grad, node):
        return ops.dilate(out_grad, self.axes, self.dilation)


class UnDilateGradientUndilates(TensorOp):
    def __init__(self, axes, dilation):
        self.axes, self.dilation = axes, dilation

    def compute(self, a):
        return a[_steps(self.axes, a.ndim, self.dilation + 1)]

    def gradient(self, out_grad, node):
        return ops.undilate(out_grad, self.axes, self.dilation)


def _windows(A, K, s, window_step=1):
    N, H, W, C = A.shape
    Ns, Hs, Ws, Cs = A.strides
    h_out, w_out = (H - K) // s + 1, (W - K) // s + 1
    view = A.as_strided((N, h_out, w_out, K, K, C), (Ns, Hs * window_step, Ws * window_step, Hs, Ws, Cs))
    return view.compact().reshape((N * h_out * w_out, K * K * C)), (N, h_out, w_out)


def conv_compute_ignoring_stride_in_strides(self, A, B):
    """Sizes the output for the stride but steps one pixel between windows."""
    p, s = self.padding, self.stride
    A = A.pad(((0, 0), (p, p), (p, p), (0, 0))).compact()
    K, _, C, C_out = B.shape
    rows, shape = _windows(A, K, s, window_step=1)
    return (rows @ B.compact().reshape((K * K * C, C_out))).reshape(shape + (C_out,))


def conv_compute_without_padding(self, A, B):
    K, _, C, C_out = B.shape
    rows, shape = _windows(A.compact(), K, self.stride, self.stride)
    return (rows @ B.compact().reshape((K * K * C, C_out))).reshape(shape + (C_out,))


def conv_compute_flipping_the_kernel(self, A, B):
    """A true (flipped) convolution; deep learning's conv is a cross-correlation."""
    p, s = self.padding, self.stride
    A = A.pad(((0, 0), (p, p), (p, p), (0, 0))).compact()
    K, _, C, C_out = B.shape
    rows, shape = _windows(A, K, s, s)
    return (rows @ B.flip((0, 1)).compact().reshape((K * K * C, C_out))).reshape(shape + (C_out,))


def conv_compute_kernel_channels_first(self, A, B):
    """Flattens the kernel as (C_in, K, K): rows and kernel disagree on the order inside a window."""
    p, s = self.padding, self.stride
    A = A.pad(((0, 0), (p, p), (p, p), (0, 0))).compact()
    K, _, C, C_out = B.shape
    rows, shape = _windows(A, K, s, s)
    kernel = B.permute((2, 0, 1, 3)).compact().reshape((K * K * C, C_out))
    return (rows @ kernel).reshape(shape + (C_out,))


def _grad_w(X, out_grad, p):
    g = ops.transpose(ops.transpose(out_grad, (0, 1)), (1, 2))
    return ops.transpose(ops.transpose(ops.conv(ops.transpose(X, (0, 3)), g, padding=p), (0, 1)), (1, 2))


def conv_gradient_without_flip(self, out_grad, node):
    X, W = node.inputs
    K, s, p = W.shape[0], self.stride, self.padding
    if s > 1:
        out_grad = ops.dilate(out_grad, (1, 2), s - 1)
    grad_x = ops.conv(out_grad, ops.transpose(W, (2, 3)), padding=K - 1 - p)
    return grad_x, _grad_w(X, out_grad, p)


def conv_gradient_same_padding(self, out_grad, node):
    """Pads the input's adjoint by P, as the forward did, instead of K - 1 - P."""
    X, W = node.inputs
    s, p = self.stride, self.padding
    if s > 1:
        out_grad = ops.dilate(out_grad, (1, 2), s - 1)
    grad_x = ops.conv(out_grad, ops.transpose(ops.flip(W, (0, 1)), (2, 3)), padding=p)
    return grad_x, _grad_w(X, out_grad, p)


def conv_gradient_without_dilation(self, out_grad, node):
    X, W = node.inputs
    K, p = W.shape[0], self.padding
    grad_x = ops.conv(out_grad, ops.transpose(ops.flip(W, (0, 1)), (2, 3)), padding=K - 1 - p)
    return grad_x, _grad_w(X, out_grad, p)


def conv_gradient_default_padding(self, out_grad, node):
    """Forgets that ops.conv's padding defaults to 1 for the kernel's adjoint."""
    X, W = node.inputs
    K, s, p = W.shape[0], self.stride, self.padding
    if s > 1:
        out_grad = ops.dilate(out_grad, (1, 2), s - 1)
    grad_x = ops.conv(out_grad, ops.transpose(ops.flip(W, (0, 1)), (2, 3)), padding=K - 1 - p)
    g = ops.transpose(ops.transpose(out_grad, (0, 1)), (1, 2))
    grad_w = ops.transpose(ops.transpose(ops.conv(ops.transpose(X, (0, 3)), g), (0, 1)), (1, 2))
    return grad_x, grad_w


def conv_gradient_detached(self, out_grad, node):
    """Right values through needle ops, but cut off the graph with detach(): no second derivatives."""
    grad_x, grad_w = ref("cnn.Conv.gradient")(self, out_grad, node)
    return grad_x.detach(), grad_w.detach()


def kaiming_uniform_ignores_shape(fan_in, fan_out, shape=None, nonlinearity="relu", **kwargs):
    b = math.sqrt(2) * math.sqrt(3 / fan_in)
    return init.rand(fan_in, fan_out, low=-b, high=b, **kwargs)


def kaiming_uniform_fan_from_shape(fan_in, fan_out, shape=None, nonlinearity="relu", **kwargs):
    """Takes the fan-in from the kernel's first axis (K) instead of the argument."""
    shape = shape or (fan_in, fan_out)
    b = math.sqrt(2) * math.sqrt(3 / shape[0])
    return init.rand(*shape, low=-b, high=b, **kwargs)


class ConvBase(nn.Module):
    padding_rule = staticmethod(lambda k: k // 2)
    bias_fan = "in"
    bias_first = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, bias=True, device=None, dtype="float32"):
        super().__init__()
        k = kernel_size
        self.in_channels, self.out_channels, self.kernel_size, self.stride = in_channels, out_channels, k, stride
        self.padding = self.padding_rule(k)
        fan_in, fan_out = in_channels * k * k, out_channels * k * k
        bound = 1 / math.sqrt(fan_in if self.bias_fan == "in" else fan_out)
        draw_bias = lambda: nn.Parameter(init.rand(out_channels, low=-bound, high=bound, dtype=dtype)) if bias else None
        if self.bias_first:
            self.bias = draw_bias()
        self.weight = nn.Parameter(init.kaiming_uniform(fan_in, fan_out, shape=(k, k, in_channels, out_channels),
                                                        dtype=dtype))
        if not self.bias_first:
            self.bias = draw_bias()

    def forward(self, x):
        nhwc = ops.transpose(ops.transpose(x, (1, 2)), (2, 3))
        out = ops.conv(nhwc, self.weight, stride=self.stride, padding=self.padding)
        if self.bias is not None:
            out = out + self.bias.reshape((1, 1, 1, self.out_channels)).broadcast_to(out.shape)
        return ops.transpose(ops.transpose(out, (2, 3)), (1, 2))


ConvNoPadding = type("ConvNoPadding", (ConvBase,), {"padding_rule": staticmethod(lambda k: 0)})
ConvBiasFromFanOut = type("ConvBiasFromFanOut", (ConvBase,), {"bias_fan": "out"})
ConvBiasFirst = type("ConvBiasFirst", (ConvBase,), {"bias_first": True})


class ConvSwapsHW(ConvBase):
    """Moves the channels last with one swap (1, 3): the image comes out transposed (N, W, H, C)."""

    def forward(self, x):
        out = ops.conv(ops.transpose(x, (1, 3)), self.weight, stride=self.stride, padding=self.padding)
        if self.bias is not None:
            out = out + self.bias.reshape((1, 1, 1, self.out_channels)).broadcast_to(out.shape)
        return ops.transpose(out, (1, 3))


class BatchNorm2dReshapeOnly(nn.BatchNorm1d):
    """Reshapes NCHW straight to (N*H*W, C): the columns mix channels and pixels."""

    def forward(self, x):
        n, c, h, w = x.shape
        return nn.BatchNorm1d.forward(self, x.reshape((n * h * w, c))).reshape((n, c, h, w))


class BatchNorm2dPerPixel(nn.Module):
    """Normalises over the batch only (BatchNorm1d's axis 0), separately for every pixel."""

    def __init__(self, dim, eps=1e-5, momentum=0.1, device=None, dtype="float32"):
        super().__init__()
        self.dim, self.eps, self.momentum = dim, eps, momentum
        self.weight = nn.Parameter(init.ones(dim, dtype=dtype))
        self.bias = nn.Parameter(init.zeros(dim, dtype=dtype))
        self.running_mean = init.zeros(dim, dtype=dtype)
        self.running_var = init.ones(dim, dtype=dtype)

    def forward(self, x):
        n, c, h, w = x.shape
        mean = (x.sum((0,)) / n).reshape((1, c, h, w)).broadcast_to(x.shape)
        centred = x - mean
        var = ((centred * centred).sum((0,)) / n).reshape((1, c, h, w)).broadcast_to(x.shape)
        wt = self.weight.reshape((1, c, 1, 1)).broadcast_to(x.shape)
        bs = self.bias.reshape((1, c, 1, 1)).broadcast_to(x.shape)
        return wt * centred / (var + self.eps) ** 0.5 + bs


def _conv_bn(a, b, k, s, relu=True):
    layers = [nn.Conv(a, b, k, stride=s), nn.BatchNorm2d(b)] + ([nn.ReLU()] if relu else [])
    return nn.Sequential(*layers)


class ResNet9Base(nn.Module):
    fifth_in = 64
    relu = True
    residual = True

    def __init__(self, device=None, dtype="float32"):
        super().__init__()
        cbn = lambda a, b, k, s: _conv_bn(a, b, k, s, self.relu)
        wrap = nn.Residual if self.residual else (lambda m: m)
        self.model = nn.Sequential(
            cbn(3, 16, 7, 4), cbn(16, 32, 3, 2), wrap(nn.Sequential(cbn(32, 32, 3, 1), cbn(32, 32, 3, 1))),
            cbn(32, 64, 3, 2), cbn(self.fifth_in, 128, 3, 2),
            wrap(nn.Sequential(cbn(128, 128, 3, 1), cbn(128, 128, 3, 1))),
            nn.Flatten(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.model(x)


ResNet9FigureTypo = type("ResNet9FigureTypo", (ResNet9Base,), {"fifth_in": 32})
ResNet9WithoutReLU = type("ResNet9WithoutReLU", (ResNet9Base,), {"relu": False})
ResNet9WithoutSkips = type("ResNet9WithoutSkips", (ResNet9Base,), {"residual": False})


class ResNet9LinearFirst(ResNet9Base):
    """Creates the classifier before the convolutions: the random draws come in another order."""

    def __init__(self, device=None, dtype="float32"):
        nn.Module.__init__(self)
        head = [nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)]
        cbn = _conv_bn
        self.model = nn.Sequential(
            cbn(3, 16, 7, 4), cbn(16, 32, 3, 2), nn.Residual(nn.Sequential(cbn(32, 32, 3, 1), cbn(32, 32, 3, 1))),
            cbn(32, 64, 3, 2), cbn(64, 128, 3, 2), nn.Residual(nn.Sequential(cbn(128, 128, 3, 1), cbn(128, 128, 3, 1))),
            nn.Flatten(), *head)


def _epoch(dataloader, model, loss_fn, opt, *, set_mode=True, weighted=True, error_rate=False, tensor_loss=False):
    np.random.seed(4)
    if set_mode:
        model.eval() if opt is None else model.train()
    correct, loss_sum, count, batches = 0, 0.0, 0, 0
    for X, y in dataloader:
        logits = model(X)
        loss = loss_fn(logits, y)
        if opt is not None:
            opt.reset_grad()
            loss.backward()
            opt.step()
        labels = y.numpy()
        correct += int((logits.numpy().argmax(axis=1) == labels).sum())
        if tensor_loss:
            loss_sum = loss_sum + loss * len(labels)
        else:
            loss_sum += float(loss.numpy()) * (len(labels) if weighted else 1)
        count += len(labels)
        batches += 1
    accuracy = correct / count
    return (1 - accuracy if error_rate else accuracy), loss_sum / (count if weighted else batches)


def epoch_without_eval_mode(dataloader, model, loss_fn=nn.SoftmaxLoss(), opt=None, *, progress=False):
    return _epoch(dataloader, model, loss_fn, opt, set_mode=False)


def epoch_mean_of_batch_means(dataloader, model, loss_fn=nn.SoftmaxLoss(), opt=None, *, progress=False):
    return _epoch(dataloader, model, loss_fn, opt, weighted=False)


def epoch_error_rate(dataloader, model, loss_fn=nn.SoftmaxLoss(), opt=None, *, progress=False):
    """Chapter 03's error rate; hw4 reports accuracy."""
    return _epoch(dataloader, model, loss_fn, opt, error_rate=True)


def epoch_summing_loss_tensors(dataloader, model, loss_fn=nn.SoftmaxLoss(), opt=None, *, progress=False):
    return _epoch(dataloader, model, loss_fn, opt, tensor_loss=True)


WRONG = {
    "NDArray.pad": [pad_left_only, pad_at_the_start, pad_always_float32],
    "NDArray.flip": [flip_without_offset, flip_offset_from_zero, flip_not_compacted],
    "Flip": [FlipGradientIdentity, FlipGradientOnNumpy],
    "Dilate": [DilateZerosBefore, DilateWithoutTrailingZeros, DilateGradientDilates],
    "UnDilate": [UnDilateStepOfDilation, UnDilateGradientUndilates],
    "Conv.compute": [conv_compute_ignoring_stride_in_strides, conv_compute_without_padding,
                     conv_compute_flipping_the_kernel, conv_compute_kernel_channels_first],
    "Conv.gradient": [conv_gradient_without_flip, conv_gradient_same_padding, conv_gradient_without_dilation,
                      conv_gradient_default_padding, conv_gradient_detached],
    "kaiming_uniform": [kaiming_uniform_ignores_shape, kaiming_uniform_fan_from_shape],
    "nn.Conv": [ConvNoPadding, ConvBiasFromFanOut, ConvBiasFirst, ConvSwapsHW],
    "nn.BatchNorm2d": [BatchNorm2dReshapeOnly, BatchNorm2dPerPixel],
    "ResNet9": [ResNet9FigureTypo, ResNet9WithoutReLU, ResNet9WithoutSkips, ResNet9LinearFirst],
    "epoch_general_cifar10": [epoch_without_eval_mode, epoch_mean_of_batch_means, epoch_error_rate,
                              epoch_summing_loss_tensors],
}
class TestCnnChapter(ChapterContract):
    chapter, textbook, wrong = "cnn", "07_cnn", WRONG


def test_a_flip_that_reads_outside_its_buffer_is_reported_not_run():
    course.exercise("cnn.NDArray.flip")(flip_without_offset)
    with pytest.raises(CheckFailed) as failure:
        course.check("cnn.NDArray.flip")
    assert "outside" in str(failure.value)
