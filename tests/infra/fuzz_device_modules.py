"""Calls every function of every device module with hostile arguments; run by tests/infra/test_no_crash.py in a child.

`python tests/infra/fuzz_device_modules.py MODULE START` runs the cases of MODULE (cpu, cuda_sim, cpu_numpy, sim_kernels)
from number START on, printing `CASE i` before each (flushed), so that the parent can name the case that killed
the process and start a new child after it. A case may raise any Python exception; it must never kill the process.

Hostile arguments: None, wrong types, buffers of the wrong dtype, too-short buffers (0 and 1 elements), huge and
negative sizes, huge shapes and strides, NaN and infinite scalars. Each case is one function called with a
plausible call's arguments, one of them replaced by a hostile value, or with all of its buffers too short, or all
of its sizes huge.
"""
from __future__ import annotations

import math
import re
import sys

import numpy as np

HUGE = [2**62, 2**63 - 1, 2**63, 2**64, -1, -(2**62), 2**31, 2**32 + 4]


def kinds_from_doc(fn) -> list[str]:
    """Argument kinds of a pybind11 function from its signature line: array, float, int, seq, bool, ndarray."""
    line = (fn.__doc__ or "").splitlines()[0]
    params = re.match(r"\w+\((.*)\) ->", line).group(1)
    if not params:  # memory_stats(), reset_peak_memory_stats()
        return []
    kinds = []
    for part in re.split(r", (?=arg\d+:)", params):
        t = part.split(":", 1)[1]
        kinds.append("array" if t.strip().endswith(".Array") else "seq" if "Sequence" in t else
                     "ndarray" if "ndarray" in t else "bool" if t.strip() == "bool" else
                     "float" if "SupportsFloat" in t else "int")
    return kinds


def hostile(kind: str, make):
    """Values to put in place of an argument of `kind` (make(size, dtype) makes a device buffer)."""
    common = [None, "x", object(), 1.5j]
    if kind == "array":
        return common + [make(0, "float32"), make(1, "float32"), make(4, "float64"), np.ones(4, np.float32), 4]
    if kind == "seq":
        return common + [[], [2**62], [-1], [4, 4], [2**31] * 3, [2**62, 2**62], [0, 2**62], [4] * 40, [1.5], 4]
    if kind in ("int", "bool"):
        return common + HUGE + [1.5, float("nan"), [4]]
    if kind == "float":
        return common + [float("nan"), float("inf"), 1e308, 2**1000, [1.0]]
    if kind == "ndarray":
        return common + [np.ones(1, np.float32), np.ones(2**16, np.float32), np.ones((2, 2), np.float64),
                         np.array(["a"]), np.ones(4, object)]
    raise ValueError(kind)


def base(kind: str, make, dtype="float32", size=0):
    """A plausible argument: buffers of 4 elements, sizes `size` (0: most calls do nothing; 1: they compute)."""
    return {"array": lambda: make(4, dtype), "seq": lambda: [max(size, 1)], "int": lambda: size,
            "bool": lambda: True, "float": lambda: 1.0, "ndarray": lambda: np.ones(4, dtype)}[kind]()


def module_cases(mod, kinds: dict[str, list[str]], make):
    """(name, thunk) for every function of `mod` listed in kinds, plus its buffer constructor."""
    cases = []
    arr = mod.Array
    for args in [(None,), ("x",), (-1,), (2**62,), (2**64,), (1.5,), (4, None), (4, "int8"), (4, 4), (2**40 + 1,)]:
        cases.append((f"Array{args}", lambda args=args: arr(*args)))
    for name, ks in sorted(kinds.items()):
        fn = getattr(mod, name)
        for size in (0, 1):
            for i, k in enumerate(ks):
                for h in hostile(k, make):
                    def call(fn=fn, ks=ks, i=i, h=h, size=size):
                        args = [base(k2, make, size=size) for k2 in ks]
                        args[i] = h
                        fn(*args)
                    cases.append((f"{name} (sizes {size}) arg {i} = {h!r:.40}", call))
        for label, pick in [("short buffers", lambda k: make(1, "float32") if k == "array" else None),
                            ("empty buffers", lambda k: make(0, "float32") if k == "array" else None),
                            ("huge sizes", lambda k: 2**62 if k == "int" else [2**62, 2**62] if k == "seq" else None),
                            ("size 2**32+4", lambda k: 2**32 + 4 if k == "int" else [2**32 + 4] if k == "seq" else None),
                            ("float64 out", lambda k: None)]:
            def call(fn=fn, ks=ks, pick=pick, label=label):
                args = [pick(k) if pick(k) is not None else base(k, make) for k in ks]
                if label == "float64 out":
                    args[-1 if ks[-1] == "array" else max(j for j, k in enumerate(ks) if k == "array")] = make(4, "float64")
                fn(*args)
            cases.append((f"{name} {label}", call))
    return cases


# the C++ module's own buffer accounting (backend_ndarray/memory.py asks the others' NDArrays instead)
CPU_ONLY = {"memory_stats", "reset_peak_memory_stats"}


def cpu_kinds(mod) -> dict[str, list[str]]:
    return {n: kinds_from_doc(getattr(mod, n)) for n in dir(mod)
            if not n.startswith("_") and n != "Array" and callable(getattr(mod, n))}


def cases_for(which: str):
    import needle.backend_ndarray as nd

    cpu = nd.cpu().mod
    kinds = cpu_kinds(cpu)
    if which == "cpu":
        return module_cases(cpu, kinds, lambda n, d: cpu.Array(n, d))
    if which == "cuda_sim":
        sim = nd.cuda_sim().mod
        sim_kinds = {n: kinds[n] for n in kinds if n not in CPU_ONLY}
        sim_kinds["matmul_naive"] = sim_kinds["matmul_shared"] = kinds["matmul"]
        missing = {n for n in dir(sim) if not n.startswith("_") and callable(getattr(sim, n))} - set(sim_kinds)
        assert missing <= {"Array", "checked", "x"}, f"cuda_sim functions the fuzzer does not know: {missing}"
        cases = module_cases(sim, sim_kinds, lambda n, d: sim.Array(n, d))
        for h in hostile("bool", None)[:4]:
            cases.append((f"checked({h!r:.20})", lambda h=h: sim.checked(h).__enter__()))
        return cases
    if which == "cpu_numpy":
        mod = nd.cpu_numpy().mod
        np_kinds = {n: kinds[n] for n in kinds if hasattr(mod, n)}
        return module_cases(mod, np_kinds, lambda n, d: mod.Array(n, d))
    if which == "sim_kernels":
        return sim_kernel_cases()
    raise ValueError(which)


def sim_kernel_cases():
    """The simulator's raw kernels: wrong arguments (None, types, dtypes, out-of-range integers, their number, the
    geometry) are rejected before launch; in checked mode, buffers too short for the sizes are reported. Unchecked, a
    launch trusts its sizes and the contents of its shape tables, as a CUDA kernel does: the device module's
    functions (cuda_sim().mod, the "cuda_sim" cases) check them before they launch."""
    from needle.backend_ndarray import ndarray_backend_cuda_sim as sim

    buf = {"float": "float32", "double": "float64", "long long": "int64", "int": "int32"}
    cases = []
    for name, k in sorted(sim.builtin_kernels().items()):
        params = k.params

        def arg(p, size=256):
            # buffers of 4**4 elements hold every kernel's operands at sizes 4 (up to four dimensions of 4);
            # ones: the shape and stride tables of the strided kernels are then valid too
            if p.endswith("*"):
                a = sim.Array(size, buf[p.replace("const ", "")[:-1]])
                np.asarray(a)[:] = 1
                return a
            return 1.0 if p in ("float", "double") else (1 if p == "bool" else 4)

        def good(size=256, params=params):
            return [arg(p, size) for p in params]

        for i, p in enumerate(params):
            wrong = [None, "x", object(), sim.Array(4, "int32" if "int" not in p else "float32"), 2**70, -(2**70), [1]]
            for h in wrong:
                def call(k=k, i=i, h=h, good=good):
                    args = good()
                    args[i] = h
                    k((1,), (32,), args)
                cases.append((f"{name} arg {i} = {h!r:.30}", call))
        for g, b in [((0,), (0,)), ((1,), (2048,)), ((2**40,), (32,)), ((1, 2, 3, 4), (32,)), ((-1,), (32,)), (None, (32,)),
                     ((1,), "x"), ((), (32,))]:
            cases.append((f"{name} grid {g} block {b}", lambda k=k, g=g, b=b, good=good: k(g, b, good())))
        cases.append((f"{name} too few args", lambda k=k, good=good: k((1,), (32,), good()[:-1])))
        cases.append((f"{name} args not a sequence", lambda k=k: k((1,), (32,), None)))
        if all(p.endswith("*") or p in ("long long", "int") for p in params) or name.startswith(("ewise", "scalar", "fill")):
            cases.append((f"{name} checked, 1-element buffers", lambda k=k, good=good: k((1,), (32,), good(1), checked=True)))
    return cases


def main() -> None:
    which, start = sys.argv[1], int(sys.argv[2])
    cases = cases_for(which)
    print(f"TOTAL {len(cases)}", flush=True)
    for i in range(start, len(cases)):
        print(f"CASE {i} {cases[i][0]}", flush=True)
        try:
            cases[i][1]()
        except BaseException as e:  # noqa: BLE001 - any Python error is a pass; only a dead process fails
            if isinstance(e, KeyboardInterrupt):
                raise
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
