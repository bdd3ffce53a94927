"""The floors of ARCHITECTURE.md: no module of needle imports from a floor above its own (top-level imports and
imports inside functions alike), and the backend is decided in one module."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "needle"
FLOORS = {
    "needle.axes": 0, "needle.labels": 0, "needle.viz": 0, "needle._editable": 0,
    "needle.backend_ndarray": 1, "needle.backend_numpy": 1,
    "needle.backend_selection": 2,
    "needle.autograd": 3,
    "needle.ops": 4, "needle.init": 4,
    "needle.nn": 5, "needle.optim": 5, "needle.data": 5, "needle.serialization": 5, "needle.distributed": 5,
    "needle.apps": 6,
    "needle.course": 7,
}
# autograd reaches needle.ops and needle.init through `import needle`, at call time only (the course's skeleton).
CALL_TIME = {("needle.autograd", "needle")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _area(module: str) -> str:
    """The FLOORS key a module belongs to: the longest listed prefix."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in FLOORS:
            return ".".join(parts[:n])
    return module


def _is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (PACKAGE.parent / relative).with_suffix(".py").exists() or (PACKAGE.parent / relative / "__init__.py").exists()


def needle_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import of a needle module in `path`; `from needle import x` names needle.x when x
    is a module."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "needle"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "needle":
                continue
            subs = [f"{target}.{a.name}" for a in node.names if _is_module(f"{target}.{a.name}")]
            found += [(node.lineno, t) for t in (subs or [target])]
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_floor():
    unplaced = sorted({_area(_module_name(p)) for p in SOURCES} - set(FLOORS) - {"needle"})
    assert not unplaced, f"modules with no floor in FLOORS (and ARCHITECTURE.md): {unplaced}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_imports_never_go_up_a_floor(path):
    source = _area(_module_name(path))
    if source == "needle":  # the root package re-exports the public API: it sits above every floor
        return
    upward = [f"line {line}: {target} (floor {FLOORS[_area(target)]})"
              for line, target in needle_imports(path)
              if (source, target) not in CALL_TIME and _area(target) in FLOORS
              and FLOORS[_area(target)] > FLOORS[source]]
    assert not upward, f"{path.name} (floor {FLOORS[source]}) imports from above: {upward}"


def test_root_package_is_imported_only_where_allowed():
    """`import needle` inside the library reaches everything; below the ops it is allowed only at call time."""
    bare = [(_module_name(p), line) for p in SOURCES for line, target in needle_imports(p) if target == "needle"]
    low = [(m, line) for m, line in bare
           if FLOORS.get(_area(m), 99) < FLOORS["needle.ops"] and (_area(m), "needle") not in CALL_TIME]
    assert not low, low


# NDArray's helpers sit under ndarray.py inside floor 1: ndarray.py imports them, and they reach NDArray only at call
# time (an argument, `BackendDevice.array_type`), so there is no import cycle; `if TYPE_CHECKING:` imports are
# annotations only.
NDARRAY_HELPERS = ["devices", "dtypes", "numpy_interop", "course_fallback", "layout", "memory"]


def runtime_imports(path: Path) -> list[tuple[int, str]]:
    """needle_imports(path) without those under `if TYPE_CHECKING:`."""
    typing_only = {node.lineno for block in ast.walk(ast.parse(path.read_text(), str(path)))
                   if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                   for stmt in block.body for node in ast.walk(stmt) if isinstance(node, (ast.Import, ast.ImportFrom))}
    return [(line, target) for line, target in needle_imports(path) if line not in typing_only]


@pytest.mark.parametrize("helper", NDARRAY_HELPERS)
def test_ndarrays_helpers_never_import_it(helper):
    path = PACKAGE / "backend_ndarray" / f"{helper}.py"
    assert path.exists(), path
    back = [(line, target) for line, target in runtime_imports(path) if target == "needle.backend_ndarray.ndarray"]
    assert not back, f"{path.name} imports ndarray.py, which imports it: {back}"


def test_the_backend_is_decided_in_one_module():
    offenders = [f"{p.relative_to(PACKAGE.parent)}:{i}" for p in SOURCES if p.name != "backend_selection.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if "NEEDLE_BACKEND\"" in line or "NEEDLE_BACKEND'" in line or "array_api is n" in line
                 or "BACKEND ==" in line or "BACKEND !=" in line]
    assert not offenders, offenders


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The rule can fail: a floor-3 module importing nn (floor 5) is reported."""
    fake = PACKAGE / "autograd.py"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: "from .nn import Linear\nimport needle.course\n")
    assert needle_imports(fake) == [(1, "needle.nn"), (2, "needle.course")]
    with pytest.raises(AssertionError, match="needle.nn"):
        test_imports_never_go_up_a_floor(fake)


def test_the_helper_check_sees_an_import_of_ndarray_and_skips_annotations(monkeypatch):
    """The cycle rule can fail: a run-time import of ndarray.py from a helper is reported, a TYPE_CHECKING one not."""
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .ndarray import NDArray\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source)
    test_ndarrays_helpers_never_import_it("devices")
    source += "from . import ndarray\n"
    with pytest.raises(AssertionError, match="imports ndarray.py"):
        test_ndarrays_helpers_never_import_it("devices")
