"""Speed benchmarks: needle against numpy (and PyTorch when installed), ratios measured in one run."""
