"""2-D convolution (NHWC input, (K, K, C_in, C_out) weight) via im2col: one device kernel, one matmul.

The backward pass uses two more ops of the same shape, so every gradient is itself differentiable.
With T(x, w, g) = <conv(x, w), g>, the three ops are the partial derivatives of T:
conv(x, w) = dT/dg, ConvBackwardInput(g, w) = dT/dx, ConvBackwardWeight(x, g) = dT/dw,
so each op's gradient is expressed through the other two.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

from ..autograd import NDArray, TensorOp
from ..backend_selection import array_api
from . import array_compat as compat

fused = compat.fused


class _Window(NamedTuple):
    """Where a kernel meets its input. Only the taps rows[0]:rows[1] x cols[0]:cols[1] ever touch it; the others
    see zero padding alone (the outer taps of a 3 x 3 kernel over a 1 x 1 image with padding 1), so they add
    nothing to the output and get a zero gradient, and im2col and its products leave them out. pads: the zero
    padding (top, left) that a kernel of just those taps needs for the same output (at the bottom and right,
    windows simply stop at the image's edge)."""

    rows: tuple
    cols: tuple
    out_hw: tuple
    pads: tuple

    @property
    def kernel_hw(self) -> tuple:
        return self.rows[1] - self.rows[0], self.cols[1] - self.cols[0]

    @property
    def slices(self) -> tuple:
        """The index of those taps in a weight (K, K, C_in, C_out)."""
        return slice(*self.rows), slice(*self.cols), slice(None), slice(None)

    def taps(self, w: NDArray) -> NDArray:
        """The weight (K, K, C_in, C_out) cut to the taps that touch the input."""
        return w[self.slices]


def _window(hw: tuple, kernel_hw: tuple, stride: int, padding: int) -> _Window:
    def axis(size: int, k: int):
        out = (size + 2 * padding - k) // stride + 1
        # tap i meets input rows i - padding + stride * o (o < out): the taps first..last-1, maybe none (the
        # window lies wholly in the padding: no taps, a product over nothing, zeros)
        first = min(max(0, padding - (out - 1) * stride), k)
        last = max(first, min(k, size + padding))
        return (first, last), out, padding - first

    (h, w), (kh, kw) = hw, kernel_hw
    (rows, out_h, pad_h), (cols, out_w, pad_w) = axis(h, kh), axis(w, kw)
    return _Window(rows, cols, (out_h, out_w), (pad_h, pad_w))


def _im2col(x: NDArray, window: _Window, stride: int) -> NDArray:
    """The (N * out_h * out_w, kh * kw * C) matrix of the windows of NHWC `x` over the taps that touch it,
    zero-padded as `window` says: one device kernel reading `x` through its strides (nn.Conv's NCHW input seen
    as NHWC needs no copy first, nor a padded one)."""
    return fused.im2col(x, window.kernel_hw, stride, window.pads, window.out_hw)


def _check_conv_args(x_shape, w_shape, stride: int, padding: int) -> None:
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(f"expects NHWC input and (K, K, C_in, C_out) weight, got {x_shape} and {w_shape}")
    if x_shape[3] != w_shape[2]:
        raise ValueError(f"input channels {x_shape[3]} (shape {x_shape}) != weight C_in {w_shape[2]} ({w_shape})")
    if stride < 1 or padding < 0:
        raise ValueError(f"stride must be >= 1 and padding >= 0, got stride={stride}, padding={padding}")
    if x_shape[1] + 2 * padding < w_shape[0] or x_shape[2] + 2 * padding < w_shape[1]:
        raise ValueError(f"kernel {w_shape[:2]} is larger than the padded input {x_shape[1:3]} (padding {padding})")


class Conv(TensorOp):
    """Convolution of NHWC `A` with `B` of shape (K, K, C_in, C_out), zero `padding` on H and W, `stride`.

    saved_im2col: (A, its im2col matrix), set by compute; the weight gradient reuses the matrix instead of building it
    again (only for that very A: a node whose input was replaced builds its own)."""

    def __init__(self, stride: Optional[int] = 1, padding: Optional[int] = 0):
        self.stride = stride
        self.padding = padding
        self.saved_im2col = None

    def compute(self, A, B):
        _check_conv_args(A.shape, B.shape, self.stride, self.padding)
        window = _window(A.shape[1:3], B.shape[:2], self.stride, self.padding)
        col = _im2col(A, window, self.stride)
        self.saved_im2col = (A, col)
        out = col @ compat.reshape(window.taps(B), (col.shape[1], B.shape[3]))
        return out.reshape((A.shape[0], *window.out_hw, B.shape[3]))

    def gradient(self, out_grad, node):
        A, B = node.inputs
        grad_a = grad_b = None
        if A.requires_grad:
            grad_a = ConvBackwardInput(self.stride, self.padding, A.shape[1:3])(out_grad, B)
        if B.requires_grad:
            # the forward's im2col, which ConvBackwardWeight uses only if A still holds the array it was built from
            grad_b = ConvBackwardWeight(self.stride, self.padding, B.shape[:2], self.saved_im2col)(A, out_grad)
        return grad_a, grad_b


def conv(a, b, stride=1, padding=1):
    return Conv(stride, padding)(a, b)


class ConvBackwardInput(TensorOp):
    """dT/dx: the adjoint of conv(., w) applied to the output gradient g (a transposed convolution).

    The adjoint of im2col-then-matmul, in reverse: g @ W^T gives each output window's gradient (the im2col
    matrix's), and col2im adds every window's taps back at their places in the input, one device kernel
    for any stride and padding (taps that fell on the padding are dropped).
    """

    def __init__(self, stride: int, padding: int, input_hw: tuple):
        self.stride = stride
        self.padding = padding
        self.input_hw = tuple(input_hw)

    def compute(self, g, w):
        _, _, c_in, c_out = w.shape
        n, out_h, out_w, _ = g.shape
        window = _window(self.input_hw, w.shape[:2], self.stride, self.padding)
        kh, kw = window.kernel_hw
        weights = array_api.transpose(compat.reshape(window.taps(w), (kh * kw * c_in, c_out)), (1, 0))
        cols = compat.reshape(g, (n * out_h * out_w, c_out)) @ weights
        return fused.col2im(cols.reshape((n, out_h, out_w, kh, kw, c_in)), self.input_hw, self.stride, window.pads)

    def gradient(self, out_grad, node):
        g, w = node.inputs
        kernel = w.shape[:2]
        return Conv(self.stride, self.padding)(out_grad, w), ConvBackwardWeight(self.stride, self.padding, kernel)(
            out_grad, g
        )


class ConvBackwardWeight(TensorOp):
    """dT/dw: im2col(x)^T @ g, the weight gradient of conv(x, w) for output gradient g.

    im2col: (x, im2col(x)) from the forward Conv (its saved_im2col), used when compute sees that very x."""

    def __init__(self, stride: int, padding: int, kernel_hw: tuple, im2col: tuple | None = None):
        self.stride = stride
        self.padding = padding
        self.kernel_hw = tuple(kernel_hw)
        self.im2col = im2col

    def compute(self, x, g):
        n, out_h, out_w, c_out = g.shape
        window = _window(x.shape[1:3], self.kernel_hw, self.stride, self.padding)
        if window.out_hw != (out_h, out_w) or n != x.shape[0]:
            shape = (x.shape[0], *window.out_hw)
            raise ValueError(f"output gradient {g.shape} does not match the conv output {shape} of input {x.shape}")
        col = self.im2col[1] if self.im2col is not None and self.im2col[0] is x else _im2col(x, window, self.stride)
        grad = array_api.transpose(col, (1, 0)) @ compat.reshape(g, (n * out_h * out_w, c_out))
        grad = grad.reshape((*window.kernel_hw, x.shape[3], c_out))
        if window.kernel_hw == self.kernel_hw:
            return grad
        full = compat.zeros((*self.kernel_hw, x.shape[3], c_out), grad)  # the taps that never touch x: zero
        full[window.slices] = grad
        return full

    def gradient(self, out_grad, node):
        x, g = node.inputs
        return (
            ConvBackwardInput(self.stride, self.padding, x.shape[1:3])(g, out_grad),
            Conv(self.stride, self.padding)(x, out_grad),
        )
