"""No Python call into a device module crashes the process (DESIGN §2, §9): every function of every device module,
called with None, wrong types, too-short buffers and huge sizes, raises a Python error. The cases run in child
processes (tests/infra/fuzz_device_modules.py); a child killed by a signal or hanging is a failure naming the case, and
the run goes on after it, so one report lists every crashing case."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import needle.backend_ndarray as nd

FUZZ = Path(__file__).with_name("fuzz_device_modules.py")
MODULES = ["cpu", "cuda_sim", "cpu_numpy", "sim_kernels"]


def run_all_cases(which: str, timeout: float = 90) -> tuple[int, list[str]]:
    failures, start, total = [], 0, None
    while True:
        try:
            proc = subprocess.run([sys.executable, str(FUZZ), which, str(start)], capture_output=True, text=True,
                                  timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "2"})
            out, err, rc = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            err, rc = "", "timeout"
        lines = out.splitlines()
        total = next((int(line.split()[1]) for line in lines if line.startswith("TOTAL")), total)
        if rc == 0 and lines and lines[-1] == "DONE":
            return total, failures
        last = [line for line in lines if line.startswith("CASE ")]
        if not last:
            raise AssertionError(f"{which}: the fuzzer failed before its first case (rc {rc}):\n{err[-3000:]}")
        index = int(last[-1].split()[1])
        why = rc if rc == "timeout" else (signal.Signals(-rc).name if rc < 0 else f"exit {rc}")
        failures.append(f"{last[-1]}: {why}")
        start = index + 1


@pytest.mark.parametrize("which", MODULES)
def test_every_device_function_survives_hostile_arguments(which):
    if which in ("cuda_sim", "sim_kernels") and not nd.cuda_sim().enabled():
        pytest.skip("the CUDA simulator is not built")
    if which == "cpu" and not nd.cpu().enabled():
        pytest.skip("the C++ backend is not built")
    total, failures = run_all_cases(which)
    assert total and total > 50
    assert not failures, f"{len(failures)} of {total} cases killed the process:\n" + "\n".join(failures[:40])


def _run(code: str, env=None, timeout=120):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.mark.skipif(not nd.cpu().enabled(), reason="needs the C++ backend")
def test_a_huge_omp_num_threads_is_capped():
    code = (
        "import numpy as np, needle.backend_ndarray as nd\n"
        "for dev in [d for d in (nd.cpu(), nd.cuda_sim()) if d.enabled()]:\n"
        "    a = nd.array(np.ones(1 << 21, dtype=np.float32), device=dev)\n"
        "    assert float((a + a).numpy().sum()) == 2 * (1 << 21)\n"
        "print('ok')\n"
    )
    proc = _run(code, {"OMP_NUM_THREADS": "100000"})
    assert proc.returncode == 0 and "ok" in proc.stdout, (proc.returncode, proc.stderr[-2000:])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
@pytest.mark.parametrize("device", ["cpu", "cuda_sim"])
def test_a_child_forked_after_openmp_ran_computes(device):
    """multiprocessing's default start method on Linux forks: GNU OpenMP's workers are gone in the child."""
    if not getattr(nd, device)().enabled():
        pytest.skip(f"{device}() is not built")
    code = (
        "import multiprocessing as mp, numpy as np, needle.backend_ndarray as nd\n"
        f"dev = nd.{device}()\n"
        "a = nd.array(np.ones(1 << 21, dtype=np.float32), device=dev)\n"
        "assert float((a + a).numpy().sum()) == 2 * (1 << 21)  # the parent's OpenMP team now exists\n"
        "def child(q):\n"
        "    b = nd.array(np.ones(1 << 21, dtype=np.float32), device=dev)\n"
        "    q.put(float((b * 3).numpy().sum()) + float((nd.array(np.ones((256, 256)), device=dev) @ "
        "nd.array(np.ones((256, 256)), device=dev)).numpy()[0, 0]))\n"
        "ctx = mp.get_context('fork')\n"
        "q = ctx.Queue(); p = ctx.Process(target=child, args=(q,)); p.start()\n"
        "print(q.get(timeout=60)); p.join(30)\n"
    )
    proc = _run(code, {"OMP_NUM_THREADS": "2"}, timeout=150)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert float(proc.stdout.split()[-1]) == 3 * (1 << 21) + 256
