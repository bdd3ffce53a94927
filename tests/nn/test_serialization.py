"""state_dict / load_state_dict and needle.save / needle.load (.npz, no pickle, atomic)."""
import os

import numpy as np
import pytest

import needle as ndl
from needle import nn


def _model(seed):
    np.random.seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))


def test_round_trip_restores_parameters_buffers_and_outputs(tmp_path):
    src = _model(0)
    src(ndl.Tensor(np.random.randn(5, 4)))  # moves the running statistics away from their init
    path = tmp_path / "model.npz"
    ndl.save(src, path)
    dst = _model(1)
    ndl.load(path, dst)
    for (k, a), (k2, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(a, b)
    src.eval()
    dst.eval()
    x = ndl.Tensor(np.random.randn(3, 4))
    np.testing.assert_array_equal(src(x).numpy(), dst(x).numpy())


def test_load_keeps_tensor_identity_so_optimizers_still_see_the_parameters(tmp_path):
    model = _model(0)
    params = model.parameters()
    model.load_state_dict(_model(2).state_dict())
    assert all(a is b for a, b in zip(params, model.parameters()))
    np.testing.assert_array_equal(params[0].numpy(), _model(2).parameters()[0].numpy())


def test_save_accepts_a_mapping_and_load_returns_arrays(tmp_path):
    path = tmp_path / "d.npz"
    ndl.save({"a": ndl.Tensor(np.arange(3.0)), "b": np.ones((2, 2))}, str(path))
    state = ndl.load(path)
    assert sorted(state) == ["a", "b"] and state["b"].shape == (2, 2)
    with np.load(path, allow_pickle=False) as f:  # a plain npz archive
        assert set(f.files) == {"a", "b"}


def test_missing_unexpected_and_mismatched_keys_raise_before_changing_anything():
    model = _model(0)
    before = model.state_dict()
    state = dict(before)
    del state["modules.0.weight"]
    with pytest.raises(KeyError, match="modules.0.weight"):
        model.load_state_dict(state)
    with pytest.raises(KeyError, match="extra"):
        model.load_state_dict({**before, "extra": np.zeros(1)})
    bad = {k: v + 1 for k, v in before.items()}
    bad["modules.3.weight"] = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"modules.3.weight.*\(2, 3\).*\(3, 2\)"):
        model.load_state_dict(bad)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_non_strict_load_fills_what_the_state_has_and_keeps_the_rest():
    """strict=False skips missing keys (the first one included) and ignores unexpected ones; a Tensor value loads
    like an array, and a mis-shaped value still raises."""
    model, donor = _model(0), _model(1)
    before, wanted = model.state_dict(), donor.state_dict()
    state = {k: ndl.Tensor(v) if k.endswith("bias") else v for k, v in wanted.items() if k != "modules.0.weight"}
    model.load_state_dict({**state, "extra": np.zeros(1)}, strict=False)
    after = model.state_dict()
    np.testing.assert_array_equal(after["modules.0.weight"], before["modules.0.weight"])
    for k in state:
        np.testing.assert_array_equal(after[k], wanted[k])
    with pytest.raises(ValueError, match="modules.1.bias"):
        model.load_state_dict({"modules.1.bias": np.zeros(4)}, strict=False)


def test_save_is_atomic_and_refuses_objects(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    ndl.save(_model(0), path)
    original = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        ndl.save(_model(1), path)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary left behind
    with pytest.raises(TypeError, match="numeric"):
        ndl.save({"x": np.array([object()])}, tmp_path / "o.npz")
    with pytest.raises(TypeError, match="mapping"):
        ndl.save([1, 2], tmp_path / "l.npz")


def test_load_refuses_pickled_arrays(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError):
        ndl.load(path)
