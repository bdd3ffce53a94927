"""2-D convolution module (course hw4): NCHW in and out, square kernels, "same" padding K // 2."""
from __future__ import annotations

from needle import init, ops
from needle.autograd import Tensor

from .nn_basic import Module, Parameter

__all__ = ["Conv"]


def _square(value, name: str) -> int:
    """Accepts k or (k, k); the course supports square kernels and equal strides only."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f"Conv: {name} must be an int or a pair of equal ints, got {value}")
        value = value[0]
    return int(value)


class Conv(Module):
    """Conv2d on NCHW tensors; weight (K, K, C_in, C_out) Kaiming-uniform drawn before the bias,
    bias (C_out,) ~ U(-1/sqrt(C_in K^2), 1/sqrt(C_in K^2))."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, bias: bool = True,
                 device=None, dtype: str = "float32"):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = k = _square(kernel_size, "kernel_size")
        self.stride = _square(stride, "stride")
        self.padding = k // 2
        fan_in, fan_out = in_channels * k * k, out_channels * k * k
        self.weight = Parameter(
            init.kaiming_uniform(fan_in, fan_out, shape=(k, k, in_channels, out_channels), device=device, dtype=dtype)
        )
        bound = 1.0 / fan_in**0.5
        self.bias = (
            Parameter(init.rand(out_channels, low=-bound, high=bound, device=device, dtype=dtype)) if bias else None
        )

    def forward(self, x: Tensor) -> Tensor:
        if len(x.shape) != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv({self.in_channels}, {self.out_channels}): expected NCHW input, got shape {x.shape}")
        nhwc = ops.transpose(x, (0, 2, 3, 1))  # one permuting view each way, no copy here
        out = ops.conv(nhwc, self.weight, stride=self.stride, padding=self.padding)
        if self.bias is not None:
            out = out + self.bias.reshape((1, 1, 1, self.out_channels)).broadcast_to(out.shape)
        return ops.transpose(out, (0, 3, 1, 2))
