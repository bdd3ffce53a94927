"""The training step of each course model over a sweep of sizes, needle cpu() against PyTorch CPU in the
same run, with a profile summary per model: its top kernels (ms per step) and the share of the step spent
in Python outside kernel calls.

Sizes: the LSTM and Transformer language models at embedding = hidden in {32, 100, 200, 400} with 1 and 2
layers (batch 16, seq 20, vocabulary 10,000), ResNet9 and MLP-ResNet at batch 16 and 128. Target: every
ratio <= 1.5. `python -m benchmarks sweep`; `python -m benchmarks.bench_sweep lstm` runs the rows whose
name contains a word given; `--one-thread` times process CPU time with both frameworks on one thread,
which load from other processes on a shared machine changes little (wall-clock ratios there swing 2x)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from . import bench_training as models
from .bench_single_thread import ONE_THREAD
from .common import interleaved_best, print_table, torch_or_none
from .profile import profile_step

LM_SIZES = (32, 100, 200, 400)
LAYERS = (1, 2)
BATCHES = (16, 128)


def sweep() -> list[tuple[str, object, object]]:
    """(name, needle step builder, torch step builder taking the torch module) for every size."""
    rows = []
    for batch in BATCHES:
        rows.append((f"MLP-ResNet bs {batch}", lambda b=batch: models.needle_mlp(b),
                     lambda torch, b=batch: models.torch_mlp(torch, b)))
        rows.append((f"ResNet9 bs {batch}", lambda b=batch: models.needle_resnet9(b),
                     lambda torch, b=batch: models.torch_resnet9(torch, b)))
    for kind in ("lstm", "transformer"):
        for layers in LAYERS:
            for d in LM_SIZES:
                args = (kind, d, d, layers)
                rows.append((f"{kind} LM d {d} x{layers}", lambda a=args: models.needle_lm(*a),
                             lambda torch, a=args: models.torch_lm(torch, *a)))
    return rows


def main(argv: list[str] | None = None) -> None:
    words = list(argv or [])
    one_thread = "--one-thread" in words
    if one_thread:
        words.remove("--one-thread")
        if any(os.environ.get(k) != v for k, v in ONE_THREAD.items()):  # OpenMP reads it at start-up
            subprocess.run([sys.executable, "-m", "benchmarks.bench_sweep", "--one-thread", *words],
                           env={**os.environ, **ONE_THREAD}, check=True)
            return
    torch = torch_or_none()
    if torch is not None and one_thread:
        torch.set_num_threads(1)
    clock = time.process_time if one_thread else time.perf_counter
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    unit = "CPU ms on one thread" if one_thread else "ms"
    print(f"load average: {load} (2 cores shared: compare the ratios, measured side by side, not the times)")
    rows, profiles = [], []
    for name, ours, theirs in sweep():
        if words and not any(w in name for w in words):
            continue
        step = ours()
        steps = [step] + ([theirs(torch)] if torch is not None else [])
        times = interleaved_best(steps, rounds=5, min_time=0.15, clock=clock) + [float("nan")]
        rows.append((name, times[0] * 1e3, times[1] * 1e3, times[0] / times[1]))
        profiles.append((name, profile_step(step)))
        print(f"  {name}: needle {times[0] * 1e3:.1f} ms, torch {times[1] * 1e3:.1f} ms", file=sys.stderr, flush=True)
    print_table(f"training step over sizes ({unit}; ratio = needle cpu() / PyTorch CPU, target <= 1.5)",
                ["model", "needle", "torch", "ratio"], rows)
    print("\nprofile per step: top kernels (ms), kernel calls, share of the step outside kernels (Python)")
    for name, line in profiles:
        print(f"  {name:<24} {line}")


if __name__ == "__main__":
    main(sys.argv[1:])
