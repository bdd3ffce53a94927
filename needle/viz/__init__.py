"""Pictures for the notebooks: computation graphs, strided layouts, live training curves, image grids and attention maps (no system graphviz needed)."""
from .attention import attention_maps
from .curves import LiveCurves
from .figure import FigureView, LiveFigure
from .graph import GraphView, draw_graph
from .images import image_grid
from .parallel import parallelism_figure, ring_allreduce_figure
from .strided import StridedView, StrideWalk, side_by_side, stride_walk, strided_layout, strided_view

__all__ = ["attention_maps", "LiveCurves", "FigureView", "LiveFigure", "GraphView", "draw_graph", "image_grid",
           "parallelism_figure", "ring_allreduce_figure", "StridedView", "StrideWalk", "side_by_side", "stride_walk",
           "strided_layout", "strided_view"]
