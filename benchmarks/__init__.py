"""Speed benchmarks: needle against numpy (and PyTorch when installed), ratios measured in one run."""
import os

# numpy's OpenBLAS workers spin ~0.1 s (2^28 cycles) after each call by default, taking a core from whatever
# is timed next; at 2^22 cycles (~1.5 ms) the pause between contenders (common.SETTLE) outlasts it.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "22")
