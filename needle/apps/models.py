"""Course hw4 models: ResNet9 for CIFAR-10 and a word-level LanguageModel (RNN, LSTM or Transformer)."""
from __future__ import annotations

from needle import nn
from needle.autograd import Tensor

__all__ = ["ConvBN", "ResNet9", "LanguageModel"]


def ConvBN(in_channels: int, out_channels: int, kernel_size: int, stride: int, device=None,
           dtype: str = "float32") -> nn.Module:
    """Conv -> BatchNorm2d -> ReLU."""
    return nn.Sequential(
        nn.Conv(in_channels, out_channels, kernel_size, stride=stride, device=device, dtype=dtype),
        nn.BatchNorm2d(out_channels, device=device, dtype=dtype),
        nn.ReLU(),
    )


class ResNet9(nn.Module):
    """The course's ResNet9 for 3x32x32 images: strided ConvBNs, two residual pairs, two Linear layers
    (431,946 parameters; the 6th block is 64 -> 128, not the figure's 32 -> 128)."""

    def __init__(self, device=None, dtype: str = "float32"):
        super().__init__()

        def cbn(a: int, b: int, k: int, s: int) -> nn.Module:
            return ConvBN(a, b, k, s, device=device, dtype=dtype)

        self.model = nn.Sequential(
            cbn(3, 16, 7, 4),
            cbn(16, 32, 3, 2),
            nn.Residual(nn.Sequential(cbn(32, 32, 3, 1), cbn(32, 32, 3, 1))),
            cbn(32, 64, 3, 2),
            cbn(64, 128, 3, 2),
            nn.Residual(nn.Sequential(cbn(128, 128, 3, 1), cbn(128, 128, 3, 1))),
            nn.Flatten(),
            nn.Linear(128, 128, device=device, dtype=dtype),
            nn.ReLU(),
            nn.Linear(128, 10, device=device, dtype=dtype),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class LanguageModel(nn.Module):
    """Embedding -> RNN | LSTM | Transformer -> Linear. forward(x (seq_len, bs) ids, h) returns
    (logits (seq_len * bs, output_size), h): h is a Tensor for an RNN, (h, c) for an LSTM."""

    def __init__(self, embedding_size: int, output_size: int, hidden_size: int, num_layers: int = 1,
                 seq_model: str = "rnn", seq_len: int = 40, device=None, dtype: str = "float32"):
        super().__init__()
        self.embedding_size = embedding_size
        self.output_size = output_size
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(output_size, embedding_size, device=device, dtype=dtype)
        if seq_model == "rnn":
            self.seq_model = nn.RNN(embedding_size, hidden_size, num_layers, device=device, dtype=dtype)
            out_features = hidden_size
        elif seq_model == "lstm":
            self.seq_model = nn.LSTM(embedding_size, hidden_size, num_layers, device=device, dtype=dtype)
            out_features = hidden_size
        elif seq_model == "transformer":
            self.seq_model = nn.Transformer(embedding_size, hidden_size, num_layers, device=device, dtype=dtype,
                                            sequence_len=seq_len)
            out_features = embedding_size
        else:
            raise ValueError(f"LanguageModel: seq_model must be 'rnn', 'lstm' or 'transformer', got {seq_model!r}")
        self.linear = nn.Linear(out_features, output_size, device=device, dtype=dtype)

    def forward(self, x: Tensor, h=None):
        seq_len, bs = x.shape
        out, h = self.seq_model(self.embedding(x), h)
        return self.linear(out.reshape((seq_len * bs, out.shape[2]))), h
