"""Visual tools: computation-graph SVG, live training curves (one display updated in place), image grids."""
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import needle as ndl
from needle.viz import LiveCurves, draw_graph, image_grid

PNG = b"\x89PNG\r\n\x1a\n"


def test_graph_shows_op_shape_and_gradient_of_every_tensor():
    x = ndl.Tensor(np.arange(6.0).reshape(2, 3), dtype="float64")
    w = ndl.Tensor(np.ones((3, 1)), dtype="float64")
    y = ndl.summation(ndl.relu(x @ w) * 2.0)
    y.backward()
    view = draw_graph(y, names={"x": x, "w": w})
    root = ET.fromstring(view.svg)  # well-formed SVG
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert view.count == len(ndl.autograd.find_topo_sort([y])) == len(texts) // 3
    for expected in ("x", "w", "MatMul", "ReLU", "MulScalar", "Summation", "2×3", "grad 2×3", "grad 3×1", "scalar"):
        assert expected in texts, expected
    assert len(list(root.iter("{http://www.w3.org/2000/svg}line"))) == sum(len(n.inputs) for n in ndl.autograd.find_topo_sort([y]))
    assert repr(view) == f"<computation graph: {view.count} tensors>"


def test_graph_of_a_deep_chain_needs_no_recursion():
    x = ndl.Tensor(np.ones(2))
    y = x
    for _ in range(3000):
        y = y + 1.0
    assert draw_graph(y).count == 3001


def test_graph_without_gradients_says_so():
    a = ndl.Tensor(np.ones(2), requires_grad=False)
    texts = [t.text for t in ET.fromstring(draw_graph(a).svg).iter("{http://www.w3.org/2000/svg}text")]
    assert texts == ["constant", "2", "no grad"]


@pytest.mark.parametrize("images", [
    np.random.default_rng(0).random((12, 784)),                # flattened MNIST rows
    np.random.default_rng(1).integers(0, 256, (5, 28, 28)),     # 0..255 grayscale
    np.random.default_rng(2).random((4, 3, 8, 8)),              # CIFAR-style NCHW
    np.random.default_rng(3).random((4, 8, 8, 3)),              # NHWC
    np.random.default_rng(4).random((3, 8, 8, 1)),              # one channel, last
])
def test_image_grid_reads_common_layouts(images):
    view = image_grid(images, labels=list(range(len(images))), ncols=4)
    assert view._repr_png_().startswith(PNG)
    assert repr(view) == f"<image grid: {len(images)} images>"


def test_image_grid_names_classes_and_rejects_bad_input():
    view = image_grid(np.zeros((2, 4, 4)), labels=np.array([0, 1]), class_names=["cat", "dog"])
    titles = [ax.get_title() for ax in view.figure.axes if ax.get_title()]
    assert titles == ["cat", "dog"]
    with pytest.raises(ValueError, match="labels"):
        image_grid(np.zeros((3, 4, 4)), labels=[1, 2])
    with pytest.raises(ValueError, match="square"):
        image_grid(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="channels"):
        image_grid(np.zeros((3, 4, 4, 5)))


class FakeHandle:
    def __init__(self, log):
        self.log = log

    def update(self, obj):
        self.log.append(("update", obj))


def test_live_curves_update_one_display_in_place(monkeypatch):
    import IPython
    import IPython.display

    log = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj, display_id=False: log.append(("display", obj)) or FakeHandle(log))
    curves = LiveCurves((("train loss", "test loss"), ("error",)), title="demo")
    for epoch in range(1, 4):
        curves.update(epoch, **{"train loss": 1.0 / epoch, "error": 0.5 / epoch})
    assert [kind for kind, _ in log] == ["display", "update", "update"]
    assert all(obj.data.startswith(PNG) for _, obj in log)
    assert curves.history["train loss"] == [(1.0, 1.0), (2.0, 0.5), (3.0, 1.0 / 3)]
    assert curves.history["test loss"] == []
    fig = curves.figure()
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 1


def test_live_curves_outside_a_notebook_only_record(monkeypatch):
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    curves = LiveCurves((("loss",),))
    curves.update(1, loss=2.0)
    assert curves._live.handle is None and curves._repr_png_().startswith(PNG)
    with pytest.raises(KeyError, match="unknown metrics"):
        curves.update(2, accuracy=1.0)
    with pytest.raises(ValueError):
        LiveCurves(())


from needle.viz import strided_layout, strided_view
from needle.viz.strided import element_positions

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("make_view", [
    lambda a: a.permute((1, 0)),
    lambda a: a[1:3, ::2],
    lambda a: a[0:1, :].broadcast_to((3, 4)),
    lambda a: a[::-1, 1:],  # negative strides and an offset
])
def test_strided_view_maps_every_element_to_its_buffer_position(make_view):
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    view = make_view(ndl.NDArray(base))
    picture = strided_view(view)
    positions = element_positions(view.shape, view.strides, view._offset)
    assert np.array_equal(base.reshape(-1)[positions], view.numpy().reshape(-1))  # the drawn mapping is the view
    root = ET.fromstring(picture.svg)
    labels = [t.text for t in root.iter(f"{SVG}text") if t.text.startswith("@")]
    assert labels == [f"@{p}" for p in positions]
    assert f"strides {tuple(view.strides)}" in repr(picture)


def test_strided_layout_says_compact_and_rejects_bad_views():
    assert "(compact)" in repr(strided_layout(np.arange(6), (2, 3), (3, 1), 0))
    assert "(not compact)" in repr(strided_layout(np.arange(6), (3, 2), (1, 3), 0))
    with pytest.raises(ValueError, match="outside a buffer"):
        strided_layout(np.arange(6), (2, 3), (3, 1), 1)
    with pytest.raises(ValueError, match="differ in length"):
        strided_layout(np.arange(6), (2, 3), (3,), 0)
    with pytest.raises(ValueError, match="at most"):
        strided_layout(np.arange(100), (100,), (1,), 0)


def test_live_figure_shows_once_then_updates_in_place(monkeypatch):
    import IPython
    import IPython.display

    shown, updated = [], []

    class Handle:
        def update(self, obj):
            updated.append(obj)

    def display(obj, display_id=False):
        shown.append((obj, display_id))
        return Handle()

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", display)
    from matplotlib.figure import Figure

    from needle.viz import LiveFigure

    live = LiveFigure()
    for _ in range(3):
        live.show(Figure(figsize=(1, 1)))
    assert len(shown) == 1 and shown[0][1] is True and len(updated) == 2
    assert shown[0][0].data.startswith(PNG) and updated[-1].data.startswith(PNG)


def test_attention_maps_draw_one_heat_map_per_head_and_refuse_a_misfit():
    from needle.viz import attention_maps

    probs = np.random.default_rng(0).dirichlet(np.ones(3), size=(2, 3))  # (heads, T, T), rows sum to 1
    view = attention_maps(probs, ["the", "cat", "sat"])
    assert len(view.figure.axes) == 2 and view._repr_png_().startswith(PNG)
    assert repr(view) == "<attention maps: 2 heads over 3 tokens>"
    with pytest.raises(ValueError, match=r"\(2, 3, 3\) do not fit 4 tokens"):
        attention_maps(probs, ["a", "b", "c", "d"])
