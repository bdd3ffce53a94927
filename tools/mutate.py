"""Mutation testing of needle's core modules with cosmic-ray (`make mutate`): plant one small bug at a time,
run the tests that exercise that module, and report which bugs no test noticed (the survivors).

    python tools/mutate.py                       # every module of TESTS (hours on two cores)
    python tools/mutate.py needle/optim.py needle/ops   # some modules (a folder means its modules)
    python tools/mutate.py --report needle/optim.py     # the last results again, without running
    python tools/mutate.py --check               # the configuration only: modules and tests exist

cosmic-ray edits the module on disk for each mutant (so the editable install, its C++ extension and child
processes all see it) and puts it back after; each module has its own session in build/mutate/, resumed where
it stopped, started afresh when the module changes and its survivors re-tested when its tests change. The kill
rate is killed / (killed + survived), where survivors listed in EQUIVALENT (mutants that behave as the original)
are not counted; a mutant whose tests time out counts as killed, as cosmic-ray counts it.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = ROOT / "build" / "mutate"

# Each module and the fast tests that exercise it, the likeliest to fail first (pytest stops at the first failure).
TESTS: dict[str, tuple[str, ...]] = {
    "needle/autograd.py": ("tests/ops/test_autograd.py", "tests/ops/test_ops.py", "tests/ops/test_ops_numpy_backend.py",
                           "tests/nn/test_optim.py", "tests/nn/test_checkpoint.py"),  # the release of used graphs
    "needle/ops/ops_mathematic.py": ("tests/ops/test_ops.py", "tests/ops/test_autograd.py"),
    "needle/ops/ops_logarithmic.py": ("tests/ops/test_ops.py",),
    "needle/ops/ops_tuple.py": ("tests/ops/test_ops.py", "tests/ops/test_autograd.py"),
    "needle/axes.py": ("tests/ops/test_ops.py", "tests/backend/test_layout.py"),
    "needle/labels.py": ("tests/ops/test_labels.py", "tests/ops/test_ops_fused.py", "tests/nn/test_init.py"),
    "needle/ops/array_compat.py": ("tests/ops/test_ops.py", "tests/ops/test_ops_numpy_backend.py"),
    "needle/ops/ops_conv.py": ("tests/ops/test_ops_conv.py",),
    "needle/ops/ops_fused.py": ("tests/ops/test_ops_fused.py",),
    "needle/nn/nn_basic.py": ("tests/nn/test_nn_basic.py", "tests/nn/test_serialization.py"),  # state_dict there
    "needle/nn/nn_conv.py": ("tests/nn/test_nn_conv.py",),
    "needle/nn/nn_sequence.py": ("tests/nn/test_nn_sequence.py",),
    "needle/nn/nn_transformer.py": ("tests/nn/test_nn_transformer.py",),
    "needle/nn/nn_checkpoint.py": ("tests/nn/test_checkpoint.py",),
    "needle/nn/nn_time.py": ("tests/nn/test_nn_time.py",),
    "needle/optim.py": ("tests/nn/test_optim.py",),
    "needle/backend_ndarray/layout.py": ("tests/backend/test_layout.py", "tests/backend/test_ndarray_views.py",
                                         "tests/backend/test_ndarray_api.py"),
    "needle/course/__init__.py": ("tests/course/test_course.py",),
    "needle/course/cases.py": ("tests/course/test_course_cases.py", "tests/course/test_course.py",
                               "tests/course/test_course_checks.py"),
    "needle/course/tensors.py": ("tests/course/test_course_cases.py", "tests/course/test_course_checks.py",
                                 "tests/course/test_course_ch03.py"),
    "needle/course/mpi_trial.py": ("tests/course/test_course_ch10.py", "tests/distributed/test_distributed.py"),
    "needle/course/compare.py": ("tests/course/test_course_compare.py", "tests/course/test_course.py",
                                 "tests/course/test_course_checks.py"),
    "needle/course/errors.py": ("tests/course/test_course_registry.py", "tests/course/test_course.py"),
    "needle/course/install.py": ("tests/course/test_course_install.py", "tests/course/test_course.py",
                                 "tests/course/test_course_checks.py"),
    "needle/course/registry.py": ("tests/course/test_course_registry.py", "tests/course/test_course.py",
                                  "tests/course/test_course_hints.py"),
    "needle/course/runner.py": ("tests/course/test_course_runner.py", "tests/course/test_course.py"),
    "needle/course/warmup.py": ("tests/course/test_course_warmup.py", "tests/course/test_course.py"),
    "needle/course/workbook.py": ("tests/course/test_workbook.py",),
    "needle/course/cli.py": ("tests/course/test_workbook.py", "tests/course/test_course_flow.py"),
    "needle/course/headless.py": ("tests/course/test_course_flow.py",),
    "needle/course/cpp_magic.py": ("tests/course/test_course_cpp.py", "tests/course/test_course_ch05.py"),
    "needle/course/device_kernels.py": ("tests/course/test_course_ch05.py",),
    "needle/course/sandbox.py": ("tests/course/test_course_ch05.py",),
    "needle/course/child_trial.py": ("tests/course/test_course_ch05.py", "tests/course/test_course_ch06.py"),
    "needle/course/kernel_checks.py": ("tests/course/test_course_ch05.py", "tests/course/test_course_ch06.py"),
    "needle/course/cuda_magic.py": ("tests/course/test_course_cuda_magic.py", "tests/course/test_course_ch06.py"),
    "needle/course/cuda_exercises.py": ("tests/course/test_course_ch06.py",),
    "needle/course/cuda_trial.py": ("tests/course/test_course_ch06.py",),
    "needle/course/speed.py": ("tests/course/test_course_ch05.py",),
}

# The mutation operators used: one plausible slip per spot (+ for -, < for <=, a number off by one, a condition
# negated, a loop skipped, an `except` that no longer catches, a decorator dropped), rather than every operator
# for every other, which multiplies the run time without finding other gaps. `|` is left alone: in this code it
# spells type annotations.
OPERATORS = (
    "ReplaceBinaryOperator_(Add_Sub|Sub_Add|Mul_Div|Div_Mul|FloorDiv_Div|Mod_FloorDiv|Pow_Mul|LShift_RShift"
    "|RShift_LShift)",
    "ReplaceComparisonOperator_(Eq_NotEq|NotEq_Eq|Lt_LtE|LtE_Lt|Gt_GtE|GtE_Gt|Is_IsNot|IsNot_Is)",
    "ReplaceUnaryOperator_Delete_(Not|USub)",
    "AddNot", "ReplaceTrueWithFalse", "ReplaceFalseWithTrue", "ReplaceAndWithOr", "ReplaceOrWithAnd",
    "ReplaceBreakWithContinue", "ReplaceContinueWithBreak", "ExceptionReplacer", "NumberReplacer",
    "ZeroIterationForLoop", "RemoveDecorator",
)
EXCLUDE = "core/(?!(" + "|".join(OPERATORS) + ")$)"  # cosmic-ray's operators-filter skips what this matches

# Survivors that no test can kill because the mutant behaves as the original does: (module, the line as written,
# the line as mutated) -> why. The report names them and leaves them out of the kill rate; every other survivor is
# a gap in the tests.
_COUNTER = "the counter's starting value: only differences between two readings mean anything"
_ZERO_STRIDE = "a stride of 0 then adds (n - 1) * 0 to the low bound instead of the high one: nothing either way"
_ONE_INPUT = "inputs[-1] for inputs[0]: the op (PowerScalar, Reshape, BroadcastTo, Summation, Log, TupleGetItem, " \
    "LogSoftmax, LogSumExp) has exactly one input"
_EQUAL_PAIR = "the two items of the pair were just checked to be equal"
_FAN_OUT = "kaiming_uniform's bound depends on fan_in only; with `shape` given, fan_out is not used at all"
_ZIP = "zip stops at the shorter of the two, which still has the batch axes only"
_CONST_LEAF = ("a constant built from raw data (the row max, the causal mask) made to require a gradient: a leaf with no "
               "inputs, whose gradient is computed and never read")
_RESHAPE_NEG = "numpy's reshape reads any negative length as 'the rest', -2 as -1"
_ONE_D_LOSS = "the per-row loss is 1-D: axis -1 is axis 0, and the reshape to () takes shape (1,) and () alike"
_ONE_ITEM = "a one-item tuple's first item is its last"
EQUIVALENT: dict[tuple[str, str, str], str] = {
    ("needle/autograd.py", "TENSOR_COUNTER = 0", "TENSOR_COUNTER = -1"): _COUNTER,
    ("needle/autograd.py", "TENSOR_COUNTER = 0", "TENSOR_COUNTER = 1"): _COUNTER,
    ("needle/autograd.py", "if sa == sb or sa is None or sb is None:", "if sa == sb or sa is None and sb is None:"):
        "an operand without a shape is no Tensor: the op fails either way (numpy's TypeError or the graph's)",
    ("needle/autograd.py", "if sa == sb or sa is None or sb is None:", "if sa == sb and sa is None or sb is None:"):
        "equal shapes then go on to numpy.broadcast_shapes, which gives that shape: both operands stay as they are",
    ("needle/autograd.py", "break", "continue"):
        "stopping at the first input that requires a gradient only saves time: the flag is True either way",
    ("needle/autograd.py", "*,", "/,"):
        "Value._init's keyword-only marker made positional-only: every caller passes those arguments by keyword",
    ("needle/autograd.py", "@staticmethod", ""):
        "Tensor._array_from_numpy is only ever called on the class, where a plain function takes the same arguments",
    ("needle/autograd.py", "return backend.device_of(data[0]) if len(data) else default_device()",
     "return backend.device_of(data[ -1]) if len(data) else default_device()"):
        "data[-1] for data[0]: the items of a TensorTuple share one device",
    ("needle/autograd.py", "source = node.inputs[0]", "source = node.inputs[ -1]"):
        _ONE_INPUT,
    ("needle/ops/ops_logarithmic.py", "shape = node.inputs[0].shape", "shape = node.inputs[ -1].shape"):
        _ONE_INPUT,
    ("needle/ops/ops_logarithmic.py", "z = node.inputs[0]", "z = node.inputs[ -1]"):
        _ONE_INPUT,
    ("needle/ops/ops_tuple.py", "if i == self.index % len(node.inputs[0]):",
     "if i == self.index % len(node.inputs[ -1]):"): _ONE_INPUT,
    ("needle/ops/ops_tuple.py", "for i, value in enumerate(node.inputs[0].realize_cached_data()):",
     "for i, value in enumerate(node.inputs[ -1].realize_cached_data()):"):
        _ONE_INPUT,
    ("needle/ops/ops_mathematic.py", "a = node.inputs[0]",
     "a = node.inputs[ -1]"): _ONE_INPUT,
    ("needle/ops/ops_mathematic.py", "return reshape(out_grad, node.inputs[0].shape)",
     "return reshape(out_grad, node.inputs[ -1].shape)"): _ONE_INPUT,
    ("needle/ops/ops_mathematic.py", "return _sum_to_shape(out_grad, node.inputs[0].shape)",
     "return _sum_to_shape(out_grad, node.inputs[ -1].shape)"): _ONE_INPUT,
    ("needle/ops/ops_mathematic.py", "shape = node.inputs[0].shape",
     "shape = node.inputs[ -1].shape"): _ONE_INPUT,
    ("needle/ops/ops_mathematic.py", "return out_grad / node.inputs[0]",
     "return out_grad / node.inputs[ -1]"): _ONE_INPUT,
    ("needle/ops/ops_mathematic.py",
     "return out_grad * Tensor.make_const(compat.positive_mask(node.inputs[0].realize_cached_data()))",
     "return out_grad * Tensor.make_const(compat.positive_mask(node.inputs[ -1].realize_cached_data()))"): _ONE_INPUT,
    ("needle/ops/ops_mathematic.py",
     "axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and gshape[i + lead] != 1)",
     "axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and gshape[i + lead] != 0)"):
        "an axis of size 1 in both shapes is then summed too: a sum over one element, and the reshape after puts "
        "the axis back",
    ("needle/ops/ops_mathematic.py", "if self.axes is None or len(self.axes) == 2:  # a swap is its own inverse",
     "if self.axes is None or len(self.axes) == 1:  # a swap is its own inverse"):
        "a pair of axes then takes the permutation branch, whose inverse of a swap is the same swap",
    ("needle/nn/nn_basic.py",
     "if len(lead) != 1:  # a 2-D product is faster than a broadcast batched one (and its weight gradient)",
     "if len(lead) != 2:  # a 2-D product is faster than a broadcast batched one (and its weight gradient)"):
        "3-D inputs then take the broadcast batched product, which gives the same values (only slower)",
    ("needle/ops/ops_tuple.py", "return grads[0] if len(grads) == 1 else grads  # a tensor for one input, as every op",
     "return grads[ -1] if len(grads) == 1 else grads  # a tensor for one input, as every op"): _ONE_ITEM,
    ("needle/nn/nn_checkpoint.py", "return grads[0] if len(grads) == 1 else grads  # a tensor for one input, as every op",
     "return grads[ -1] if len(grads) == 1 else grads  # a tensor for one input, as every op"): _ONE_ITEM,
    ("needle/ops/ops_fused.py", "return compat.reshape(loss.sum(axis=0, keepdims=True) / logits.shape[0], ())",
     "return compat.reshape(loss.sum(axis= -1, keepdims=True) / logits.shape[0], ())"): _ONE_D_LOSS,
    ("needle/ops/ops_fused.py", "return compat.reshape(loss.sum(axis=0, keepdims=True) / logits.shape[0], ())",
     "return compat.reshape(loss.sum(axis=0, keepdims=False) / logits.shape[0], ())"): _ONE_D_LOSS,
    ("needle/nn/nn_transformer.py", "requires_grad=False,", "requires_grad=True,"): _CONST_LEAF,
    ("needle/nn/nn_transformer.py", "dtype=logits.dtype, requires_grad=False)", "dtype=logits.dtype, requires_grad=True)"):
        _CONST_LEAF,
    ("needle/nn/nn_time.py", "half = dim // 2", "half = dim / 2"):
        "dim is even (checked just before): dim / 2 is the same whole number, as a float, and arange takes it alike",
    ("needle/nn/nn_time.py", "if dim < 2 or dim % 2:", "if dim < 1 or dim % 2:"):
        "dim 1, the one value between, is odd: the other half of the test refuses it",
    ("needle/course/compare.py", "window = arr.reshape(-1)[start:start + limit]",
     "window = arr.reshape(- 2)[start:start + limit]"): _RESHAPE_NEG,
    ("needle/course/compare.py", "flat = np.array2string(arr.reshape(-1)[:limit], precision=4, separator=\", \")",
     "flat = np.array2string(arr.reshape(- 2)[:limit], precision=4, separator=\", \")"): _RESHAPE_NEG,
    ("needle/course/runner.py", "return 0", "return -1"):
        "the first hint's tier is then 0, which the clamp to [1, tiers] raises to 1; shown = max(-1, 1) = 1 alike",
    ("needle/course/warmup.py", "return np.where(x >= 0, 1 / (1 + z), z / (1 + z))",
     "return np.where(x > 0, 1 / (1 + z), z / (1 + z))"):
        "at x = 0, z = 1 and both branches give 1 / 2",
    ("needle/nn/nn_conv.py", "value = value[0]", "value = value[ -1]"): _EQUAL_PAIR,
    ("needle/nn/nn_conv.py", "value = value[0]", "value = value[ 1]"): _EQUAL_PAIR,
    ("needle/nn/nn_conv.py", "fan_in, fan_out = in_channels * k * k, out_channels * k * k",
     "fan_in, fan_out = in_channels * k * k, out_channels * k / k"): _FAN_OUT,
    ("needle/nn/nn_conv.py", "fan_in, fan_out = in_channels * k * k, out_channels * k * k",
     "fan_in, fan_out = in_channels * k * k, out_channels / k * k"): _FAN_OUT,
    ("needle/optim.py", "if scale < 1:", "if scale <= 1:"):
        "clipping at a scale of exactly 1 multiplies the gradients by 1: the same values",
    ("needle/backend_ndarray/layout.py", "@lru_cache(maxsize=4096)", ""):
        "the cache of compact_strides only saves time",
    ("needle/backend_ndarray/layout.py", "@lru_cache(maxsize=4096)", "@lru_cache(maxsize= 4097)"):
        "the cache of compact_strides only saves time",
    ("needle/backend_ndarray/layout.py", "@lru_cache(maxsize=4096)", "@lru_cache(maxsize= 4095)"):
        "the cache of compact_strides only saves time",
    ("needle/backend_ndarray/layout.py", "if s < 0:", "if s < 1:"): _ZERO_STRIDE,
    ("needle/backend_ndarray/layout.py", "if s < 0:", "if s <= 0:"): _ZERO_STRIDE,
    ("needle/backend_ndarray/layout.py", "live = [(s, st) for s, st in zip(shape[:-2], strides[:-2]) if s != 1]",
     "live = [(s, st) for s, st in zip(shape[:- 1], strides[:-2]) if s != 1]"): _ZIP,
    ("needle/backend_ndarray/layout.py", "live = [(s, st) for s, st in zip(shape[:-2], strides[:-2]) if s != 1]",
     "live = [(s, st) for s, st in zip(shape[:-2], strides[:- 1]) if s != 1]"): _ZIP,
    ("needle/backend_ndarray/layout.py", "if not live or all(st == 0 for _, st in live):",
     "if not live and all(st == 0 for _, st in live):"):
        "batch axes of stride 0 then reach the loop, whose pairs all agree (0 == n * 0), and give stride 0 too",
}


def select(paths: list[str]) -> list[str]:
    """The modules of TESTS named by `paths` (files, or folders meaning every module under them), in TESTS order."""
    if not paths:
        return list(TESTS)
    wanted = []
    for path in paths:
        rel = Path(os.path.relpath(Path(path).resolve(), ROOT)).as_posix()
        found = [m for m in TESTS if m == rel or m.startswith(rel.rstrip("/") + "/")]
        if not found:
            raise SystemExit(f"mutate: {path} is not a module of tools/mutate.py's TESTS (nor a folder of some)")
        wanted += [m for m in found if m not in wanted]
    return [m for m in TESTS if m in wanted]


def problems() -> list[str]:
    """What is wrong with the configuration: a module or test file that does not exist, a core module without tests."""
    found = []
    for module, tests in TESTS.items():
        if not (ROOT / module).is_file():
            found.append(f"{module}: no such module")
        found += [f"{module}: no such test file {t}" for t in tests if not (ROOT / t).is_file()]
        if not tests:
            found.append(f"{module}: no tests mapped")
    for folder in ("needle/ops", "needle/nn", "needle/course"):
        for path in sorted((ROOT / folder).glob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel not in TESTS and _has_code(path):
                found.append(f"{rel}: a core module missing from TESTS")
    return found


def _has_code(path: Path) -> bool:
    """Whether a module has more than a docstring and imports (re-export modules have nothing to mutate)."""
    body = ast.parse(path.read_text()).body
    return any(not isinstance(n, (ast.Import, ast.ImportFrom, ast.Expr)) for n in body)


def test_command(module: str) -> list[str]:
    """One pytest run over the module's tests, stopping at the first failure, with hypothesis seeded; only the
    hypothesis plugin is loaded (the others, nbval, playwright, ..., would triple the start-up time of each run)."""
    return ["env", "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1", sys.executable, "-m", "pytest", "-p", "_hypothesis_pytestplugin",
            "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--hypothesis-seed=0", *TESTS[module]]


def _digest(*paths: str) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update((ROOT / path).read_bytes())
    return digest.hexdigest()


def _session(module: str) -> tuple[Path, Path]:
    stem = module.removesuffix(".py").replace("/", ".")
    return SESSIONS / f"{stem}.toml", SESSIONS / f"{stem}.sqlite"


def _write_config(module: str, timeout: float) -> Path:
    config, _ = _session(module)
    config.parent.mkdir(parents=True, exist_ok=True)
    command = shlex.join(test_command(module))
    config.write_text(
        "# written by tools/mutate.py for one module\n"
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module)}\n"
        f"timeout = {timeout:.0f}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(command)}\n\n"
        "[cosmic-ray.distributor]\nname = \"local\"\n\n"
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = [{json.dumps(EXCLUDE)}]\n")
    return config


def _cosmic(*args: str) -> None:
    tool = Path(sys.executable).parent / args[0]
    subprocess.run([str(tool), *args[1:]], cwd=ROOT, check=True)


class BaselineFailed(Exception):
    """The module's tests fail without a mutant: every mutant would count as killed."""


def _baseline(module: str) -> float:
    """Seconds the module's tests take unmutated; BaselineFailed (with pytest's last words) when they fail."""
    start = time.monotonic()
    baseline = subprocess.run(test_command(module), cwd=ROOT, capture_output=True, text=True)
    if baseline.returncode != 0:
        raise BaselineFailed(f"mutate: {module} skipped: its tests fail without a mutant "
                             f"({shlex.join(test_command(module))}):\n{baseline.stdout[-3000:]}")
    seconds = time.monotonic() - start
    print(f"mutate: {module}: its tests pass unmutated in {seconds:.0f} s", flush=True)
    return seconds


def _stamp(module: str) -> dict:
    """What a session's results depend on: the module and the operators (its mutants), and the tests run."""
    return {"module": _digest(module) + hashlib.sha256(EXCLUDE.encode()).hexdigest(),
            "tests": list(TESTS[module]), "test_sources": _digest(*TESTS[module])}


def run(module: str) -> None:
    """Tests every mutant of `module` not yet tested in its session: all of them when the module or the operators
    changed (or a test file was dropped from its list), the survivors again when only its tests changed or grew
    (a new test can kill a survivor; a killed mutant stays killed while the test that killed it is run)."""
    config, db = _session(module)
    stamp = db.with_suffix(".json")
    before = json.loads(stamp.read_text()) if stamp.exists() and db.exists() else {}
    now = _stamp(module)
    if before.get("module") != now["module"] or not set(before["tests"]) <= set(now["tests"]):
        _write_config(module, timeout=max(120.0, 5 * _baseline(module)))
        db.unlink(missing_ok=True)
        _cosmic("cosmic-ray", "init", str(config), str(db))
        _cosmic("cr-filter-operators", str(db), str(config))
    elif before != now:
        _write_config(module, timeout=max(120.0, 5 * _baseline(module)))
        with sqlite3.connect(db) as con:  # cosmic-ray's exec runs the items that have no result
            con.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'")
    stamp.write_text(json.dumps(now))
    source = (ROOT / module).read_bytes()
    try:
        _cosmic("cosmic-ray", "exec", str(config), str(db))
    finally:  # cosmic-ray puts the module back itself, unless it was killed mid-mutant
        if (ROOT / module).read_bytes() != source:
            (ROOT / module).write_bytes(source)
            print(f"mutate: {module} restored (cosmic-ray stopped with a mutant in place)", file=sys.stderr)


def results(module: str) -> dict:
    """Counts and survivors of the module's session: killed, survived (gaps), equivalent (survivors in EQUIVALENT),
    incompetent, pending (not run yet), and survivors [(line, operator, change, why equivalent or None)]."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    _, db = _session(module)
    counts = {"killed": 0, "survived": 0, "equivalent": 0, "incompetent": 0, "pending": 0, "survivors": []}
    if not db.exists():
        return counts
    with use_db(str(db), WorkDB.Mode.open) as work_db:
        counts["pending"] = work_db.num_work_items - work_db.num_results
        for item, result in work_db.completed_work_items:
            if result.worker_outcome in (WorkerOutcome.SKIPPED, WorkerOutcome.NO_TEST):
                continue
            if result.test_outcome == TestOutcome.SURVIVED:
                mutation = item.mutations[0]
                operator = mutation.operator_name.removeprefix("core/")
                old, new = _changed_line(result.diff)
                why = EQUIVALENT.get((module, old, new))
                counts["equivalent" if why else "survived"] += 1
                counts["survivors"].append((mutation.start_pos[0], operator, f"{old}  ->  {new}", why))
            elif result.test_outcome == TestOutcome.KILLED:
                counts["killed"] += 1
            else:
                counts["incompetent"] += 1
    counts["survivors"].sort()
    return counts


def _changed_line(diff: str | None) -> tuple[str, str]:
    """The mutated lines of a unified diff, before and after: `-    return a + b` / `+    return a - b` give
    ('return a + b', 'return a - b')."""
    lines = (diff or "").splitlines()
    old = [ln[1:].strip() for ln in lines if ln.startswith("-") and not ln.startswith("---")]
    new = [ln[1:].strip() for ln in lines if ln.startswith("+") and not ln.startswith("+++")]
    return " / ".join(o for o in old if o), " / ".join(n for n in new if n)


def report(modules: list[str]) -> str:
    """The survivors of each module (the equivalent ones with why), then one line per module: the kill rate over
    the mutants a test could kill (all tested but the equivalent ones)."""
    rows, out = [], []
    for module in modules:
        counts = results(module)
        killable = counts["killed"] + counts["survived"]
        for line, operator, change, why in counts["survivors"]:
            out.append(f"{'equivalent' if why else 'survived'}  {module}:{line}  {operator}  {change}"
                       + (f"\n            ({why})" if why else ""))
        rate = f"{100 * counts['killed'] / killable:5.1f}%" if killable else "    -"
        rows.append(f"{module:40s} {counts['killed']:6d} {counts['survived']:8d} {counts['equivalent']:10d}  {rate}"
                    + (f"  ({counts['pending']} not run yet)" if counts["pending"] else "")
                    + (f"  ({counts['incompetent']} incompetent)" if counts["incompetent"] else ""))
    header = f"{'module':40s} {'killed':>6s} {'survived':>8s} {'equivalent':>10s}  kill rate"
    return "\n".join(out + ["", header, *rows]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="modules or folders of TESTS (default: all)")
    parser.add_argument("--report", action="store_true", help="report the last results without running")
    parser.add_argument("--check", action="store_true", help="check the configuration and stop")
    args = parser.parse_args(argv)
    found = problems()
    if found or args.check:
        print("\n".join(found) or f"mutate: {len(TESTS)} modules, each with existing tests")
        return 1 if found else 0
    modules = select(args.paths)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `run` puts a mutated module back
    failed = []
    for module in [] if args.report else modules:
        try:
            run(module)
        except BaselineFailed as err:
            print(err, file=sys.stderr, flush=True)
            failed.append(module)
    text = report(modules)
    SESSIONS.mkdir(parents=True, exist_ok=True)
    (SESSIONS / "report.txt").write_text(text)
    print(text, end="")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
