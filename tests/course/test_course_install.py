"""needle/course/install.py: putting a learner's code where needle looks it up, and needle's reference back."""
import sys
import types

import pytest

import needle
from needle.course import install, registry
from needle.course.install import STUB_MESSAGE


class Base:
    def compute(self, x):
        return x + 1


@pytest.fixture
def toy(monkeypatch):
    """A fake needle module `needle._toy_install` (a function `double`, a class Op(Base) with a staticmethod), the
    function re-exported on `needle` itself and held by a needle.course module, and exercises targeting them."""
    mod = types.ModuleType("needle._toy_install")
    holder = types.ModuleType("needle.course._toy_holder")

    def double(x):
        return 2 * x

    class Op(Base):
        def compute(self, x):
            return super().compute(x) * 10

        @staticmethod
        def scale(x):
            return 3 * x

    mod.double, mod.Op, holder.double = double, Op, double
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(sys.modules, holder.__name__, holder)
    monkeypatch.setitem(sys.modules, "needle._toy_gone", None)  # an import that failed: sys.modules holds None
    monkeypatch.setattr(needle, "_toy_double", double, raising=False)
    for exercise_id, target in {"toy.double": "double", "toy.compute": "Op.compute", "toy.op": "Op"}.items():
        monkeypatch.setitem(registry._EXERCISES, exercise_id,
                            registry.Exercise(exercise_id, f"{mod.__name__}:{target}", "hint", lambda impl: 1))
    yield mod, holder, double
    install.reset()


def test_a_function_is_rebound_in_needle_itself_but_never_in_the_course_modules(toy):
    mod, holder, double = toy
    mine = needle.course.exercise("toy.double")(lambda x: 2 * x + 0)
    assert mod.double is mine and needle._toy_double is mine
    assert holder.double is double  # the checks keep needle's reference
    assert install.reference("needle._toy_install:double") is double
    install.reset()
    assert mod.double is double and needle._toy_double is double


def test_a_learners_method_with_zero_argument_super_calls_the_reference_classs_base(toy):
    mod, _, _ = toy
    offset = 5

    class Mine(Base):
        def compute(self, x):
            return super().compute(x) * 10 + offset  # super() and a closure variable of the learner's own

    needle.course.exercise("toy.compute")(Mine)
    assert mod.Op().compute(1) == 25
    needle.course.exercise("toy.op")(Mine)  # the whole class
    assert mod.Op().compute(2) == 35 and mod.Op.scale(2) == 6


def test_reference_is_the_classs_own_entry_even_while_replaced(toy):
    mod, _, _ = toy
    scale = install.reference("needle._toy_install:Op.scale")
    assert isinstance(scale, staticmethod) and scale.__func__(2) == 6
    original = mod.Op.__dict__["compute"]
    needle.course.exercise("toy.compute")(lambda self, x: 0)
    assert install.reference("needle._toy_install:Op.compute") is original
    with pytest.raises(AttributeError, match="needle._toy_install:Op.nothing: no such attribute"):
        install.reference("needle._toy_install:Op.nothing")
    with pytest.raises(AttributeError, match="no such attribute"):  # inherited, not the class's own
        install.reference("needle._toy_install:Op.__init_subclass__")


def test_a_stub_in_a_property_or_a_static_method_is_found():
    """A stub is a function raising NotImplementedError with the workbook's message, a literal in its code."""
    assert STUB_MESSAGE == "not implemented yet"
    class Learner:
        @property
        def value(self):
            raise NotImplementedError("not implemented yet (toy.value)")

        @value.setter
        def value(self, v):
            self._v = v

        @staticmethod
        def helper():
            raise NotImplementedError("not implemented yet (toy.helper)")

        def done(self):
            return 1

    assert sorted(install.stub_parts(Learner)) == ["helper", "value"]
