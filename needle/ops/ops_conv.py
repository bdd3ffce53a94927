"""2-D convolution (NHWC input, (K, K, C_in, C_out) weight) via im2col: one strided view, one copy, one matmul.

The backward pass uses two more ops of the same shape, so every gradient is itself differentiable.
With T(x, w, g) = <conv(x, w), g>, the three ops are the partial derivatives of T:
conv(x, w) = dT/dg, ConvBackwardInput(g, w) = dT/dx, ConvBackwardWeight(x, g) = dT/dw,
so each op's gradient is expressed through the other two.
"""
from __future__ import annotations

from typing import Optional

from ..autograd import NDArray, TensorOp
from ..backend_selection import array_api
from . import array_compat as compat

fused = compat.fused


def _pad_hw(a: NDArray, p: int) -> NDArray:
    """Zero padding of `p` on both sides of H and W of an NHWC array."""
    return compat.pad(a, ((0, 0), (p, p), (p, p), (0, 0))) if p else a


def _im2col(a: NDArray, kh: int, kw: int, stride: int, out_h: int, out_w: int) -> NDArray:
    """The (N * out_h * out_w, kh * kw * C) matrix of the kh x kw windows of NHWC `a`: one view, one copy."""
    a = compat.compact(a)
    n, h, w, c = a.shape
    sn, sh, sw = h * w * c, w * c, c
    windows = compat.as_strided(
        a, (n, out_h, out_w, kh, kw, c), (sn, sh * stride, sw * stride, sh, sw, 1)
    )
    return compat.compact(windows).reshape((n * out_h * out_w, kh * kw * c))


def _padded_im2col(x: NDArray, kh: int, kw: int, stride: int, padding: int):
    """im2col of NHWC `x` zero-padded by `padding`, and the output's (N, out_h, out_w)."""
    x = _pad_hw(x, padding)
    n, h, w, _ = x.shape
    out_h, out_w = (h - kh) // stride + 1, (w - kw) // stride + 1
    return _im2col(x, kh, kw, stride, out_h, out_w), (n, out_h, out_w)


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
        kh, kw, c, c_out = B.shape
        col, (n, out_h, out_w) = _padded_im2col(A, kh, kw, self.stride, self.padding)
        self.saved_im2col = (A, col)
        out = col @ compat.reshape(B, (kh * kw * c, c_out))
        return out.reshape((n, out_h, out_w, c_out))

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
        kh, kw, c_in, c_out = w.shape
        n, out_h, out_w, _ = g.shape
        weights = array_api.transpose(compat.reshape(w, (kh * kw * c_in, c_out)), (1, 0))
        cols = compat.reshape(g, (n * out_h * out_w, c_out)) @ weights
        return fused.col2im(cols.reshape((n, out_h, out_w, kh, kw, c_in)), self.input_hw, self.stride,
                            (self.padding, self.padding))

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
        kh, kw = self.kernel_hw
        n, out_h, out_w, c_out = g.shape
        if self.im2col is not None and self.im2col[0] is x:
            col = self.im2col[1]
        else:
            col, shape = _padded_im2col(x, kh, kw, self.stride, self.padding)
            if shape != (n, out_h, out_w):
                raise ValueError(f"output gradient {g.shape} does not match the conv output {shape} of input {x.shape}")
        grad = array_api.transpose(col, (1, 0)) @ compat.reshape(g, (n * out_h * out_w, c_out))
        return grad.reshape((kh, kw, x.shape[3], c_out))

    def gradient(self, out_grad, node):
        x, g = node.inputs
        return (
            ConvBackwardInput(self.stride, self.padding, x.shape[1:3])(g, out_grad),
            Conv(self.stride, self.padding)(x, out_grad),
        )
