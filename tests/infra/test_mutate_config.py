"""`make mutate`'s configuration (tools/mutate.py) is valid: every core module is mapped to tests that exist, and
every operator it asks cosmic-ray for exists (so a renamed test or operator cannot silently shrink the run)."""
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("mutate", ROOT / "tools" / "mutate.py")
mutate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mutate)


def test_every_core_module_has_existing_tests():
    assert mutate.problems() == []
    for module in ("needle/autograd.py", "needle/optim.py", "needle/backend_ndarray/layout.py"):
        assert module in mutate.TESTS


def test_a_missing_test_file_or_module_is_reported(monkeypatch):
    monkeypatch.setattr(mutate, "TESTS", {**mutate.TESTS, "needle/optim.py": ("tests/test_no_such_file.py",),
                                          "needle/no_such_module.py": ("tests/test_optim.py",)})
    found = mutate.problems()
    assert "needle/optim.py: no such test file tests/test_no_such_file.py" in found
    assert "needle/no_such_module.py: no such module" in found


def test_a_core_module_left_out_is_reported(monkeypatch):
    monkeypatch.setattr(mutate, "TESTS", {m: t for m, t in mutate.TESTS.items() if m != "needle/ops/ops_conv.py"})
    assert mutate.problems() == ["needle/ops/ops_conv.py: a core module missing from TESTS"]


def test_every_equivalent_mutant_names_a_line_of_its_module_and_an_operator_used():
    """A stale entry (the line rewritten) would hide nothing, but would mislead."""
    for (module, line, mutated), why in mutate.EQUIVALENT.items():
        lines = [ln.strip() for ln in (ROOT / module).read_text().splitlines()]
        assert line in lines, f"{module}: no line {line!r}"
        assert mutated != line and why


def test_changed_line_reads_cosmic_rays_diff():
    diff = ("--- mutation diff ---\n--- a/needle/x.py\n+++ b/needle/x.py\n@@ -3 +3 @@\n"
            "-    return a + b\n+    return a - b\n")
    assert mutate._changed_line(diff) == ("return a + b", "return a - b")


def test_select_expands_folders_and_refuses_strangers():
    assert mutate.select([str(ROOT / "needle" / "optim.py")]) == ["needle/optim.py"]
    nn = mutate.select([str(ROOT / "needle" / "nn")])
    assert nn == [m for m in mutate.TESTS if m.startswith("needle/nn/")] and len(nn) == 6
    with pytest.raises(SystemExit, match="not a module"):
        mutate.select([str(ROOT / "needle" / "serialization.py")])


def test_every_operator_pattern_names_cosmic_ray_operators():
    plugins = pytest.importorskip("cosmic_ray.plugins", reason="cosmic-ray is in the mutate extra (`make mutate`)")
    names = list(plugins.operator_names())
    kept = [n for n in names if not re.match(mutate.EXCLUDE, n)]
    for pattern in mutate.OPERATORS:
        assert any(re.fullmatch("core/" + pattern, n) for n in kept), f"{pattern} matches no cosmic-ray operator"
    assert "core/ReplaceBinaryOperator_Add_Sub" in kept and "core/ReplaceBinaryOperator_Add_Mul" not in kept
    assert 20 <= len(kept) <= 40
