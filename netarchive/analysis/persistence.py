"""Neural persistence: the p-norm of each layer's zeroth-order persistence diagram (Rieck et al., ICLR 2019,
arXiv 1812.09764; reference code BorgwardtLab/Neural-Persistence), a measure of structural complexity
that grows as a network learns.

Convention (the reference one): weights are normalised by the largest |w| of all the network's weight
layers, Linear and convolutions, biases excluded (``normalize="layer"``: of each layer), w' = |w| / W.
Every vertex of a layer's graph is born at 1 and edges enter in descending w'; an edge that merges two
components adds the point (1, w'), so the points are the maximum-spanning-forest edges
(:mod:`netarchive.analysis.spanning`), and each component that never merges (isolated vertices included)
adds (1, 0). With c components and forest F::

    NP_l = ( c + sum_{e in F} (1 - w'_e)^p )^(1/p),    normalised: NP_l / (|V_l| - 1)^(1/p)

The normalised value can slightly exceed 1 because of the (1, 0) points. The network values are the sum
of NP_l and the mean of the normalised NP_l. Scale-invariant: 2·W gives the same values as W.

Convolutions (the reference code has dense layers only): by default the **channel graph**, the
bipartite multigraph of input and output channels with one edge per kernel weight, whose forest takes
each channel pair's largest |w| (NP equals the reference's on the matrix of those maxima); with
``unroll=True`` the **unrolled layer** of (channel, y, x) units, one edge per kernel weight and output
position (a kernel weight then gives as many points as the forest edges it carries). The column ``graph``
says which (``neurons`` for a Linear layer), and the table's ``convention`` attribute says it in words.

Example::

    >>> import numpy as np
    >>> from netarchive.model import Checkpoint, Layer
    >>> a = Layer.from_dense("fc.weight", np.array([[1.0, 0.5], [0.25, -0.75]]))
    >>> table = neural_persistence(Checkpoint("r", 0, (a,)))
    >>> round(float(table["np"].iloc[0]), 10), round(float(table["np_normalized"].iloc[0]), 10)  # √1.3125, ÷√3
    (1.1456439237, 0.6614378278)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from netarchive.analysis.spanning import _layer_frame, _network_row, graph_size, layer_forest, spanning_forests
from netarchive.errors import InputError
from netarchive.model import UNROLL_MAX_EDGES, Checkpoint, Layer

NORMALIZATIONS = ("global", "layer")


def _scales(checkpoint: Checkpoint, normalize: str) -> list[float]:
    """The W that divides |w| in each layer: the network's largest |w|, or each layer's."""
    if normalize not in NORMALIZATIONS:
        raise InputError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, got {normalize!r}")
    largest = [float(np.abs(layer.w).max()) if layer.edges else 0.0 for layer in checkpoint.layers]
    return largest if normalize == "layer" else [max(largest)] * len(largest)


def convention(p: float, normalize: str, unroll: bool | None = False) -> str:
    """A one-line name of the convention, for the output's title and metadata; ``unroll`` None: no
    convolutions, so nothing to say about kernels."""
    text = (
        f"Rieck et al. 2019: w' = |w| / max |w| of the {'network' if normalize == 'global' else 'layer'}, "
        f"forest points (1, w') plus (1, 0) per component, p = {p:g}, normalised by (|V| - 1)^(1/p)"
    )
    if unroll is None:
        return text
    kernels = ("unrolled (channel, y, x) units, one edge per kernel weight and output position" if unroll else
               "channel graph, one edge per kernel weight (a channel pair's forest edge is its largest |w|)")
    return f"{text}; convolutions: {kernels}"


def _graph_name(layer: Layer, unroll: bool) -> str:
    return "neurons" if layer.conv is None else "unrolled" if unroll else "channels"


def neural_persistence(
    checkpoint: Checkpoint, p: float = 2.0, normalize: str = "global", forests: list[np.ndarray] | None = None,
    unroll: bool = False, max_edges: int = UNROLL_MAX_EDGES,
) -> pd.DataFrame:
    """Neural persistence of every weight layer and of the network (see the module docstring).

    Layer rows (``scope = layer``): layer (forward index), layer_name (tensor name), kind, graph, inputs,
    outputs (vertices of the layer's graph), edges, components, msf_edges, np, np_normalized. One
    ``scope = network`` row: edges, msf_edges, np_total (sum), np_normalized_mean (mean over layers).
    ``forests`` (from :func:`~netarchive.analysis.spanning.spanning_forests` with the same ``unroll``) can be
    passed to reuse them. ``unroll`` refuses a layer whose unrolled graph exceeds ``max_edges`` edges.
    """
    if not p > 0:
        raise InputError(f"p must be positive, got {p}")
    forests = forests if forests is not None else spanning_forests(checkpoint, unroll, max_edges)
    scales = _scales(checkpoint, normalize)
    names = ("graph", "inputs", "outputs", "edges", "components", "msf_edges", "np", "np_normalized")
    columns = {name: [] for name in names}
    for layer, forest, scale in zip(checkpoint.layers, forests, scales):
        inputs, outputs, edges = graph_size(layer, unroll)
        vertices = inputs + outputs
        counts = np.asarray(forest)
        chosen = counts > 0
        points = counts[chosen].astype(np.int64)
        components = vertices - int(points.sum())
        value = (components + np.sum(points * (1.0 - _normalized(layer.w[chosen], scale)) ** p)) ** (1.0 / p)
        normalized = value / (vertices - 1) ** (1.0 / p) if vertices > 1 else np.nan
        row = (_graph_name(layer, unroll), inputs, outputs, edges, components, int(points.sum()), value, normalized)
        for name, item in zip(names, row):
            columns[name].append(item)
    frame = _layer_frame(checkpoint, columns)
    frame["np_total"] = np.nan
    frame["np_normalized_mean"] = np.nan
    frame = _network_row(
        frame,
        checkpoint,
        {
            "graph": "",
            "edges": int(frame["edges"].sum()),
            "msf_edges": int(frame["msf_edges"].sum()),
            "np_total": float(frame["np"].sum()),
            "np_normalized_mean": float(frame["np_normalized"].mean()),
        },
    )
    has_kernels = any(layer.conv is not None for layer in checkpoint.layers)
    frame.attrs["convention"] = convention(p, normalize, unroll if has_kernels else None)
    return frame


def persistence_diagram(checkpoint: Checkpoint, layer: int | str, normalize: str = "global", unroll: bool = False,
                        max_edges: int = UNROLL_MAX_EDGES) -> pd.DataFrame:
    """The persistence diagram of one weight layer (by tensor name or forward index): one row per point.

    Columns: run, level, layer (forward index), layer_name, graph (as in :func:`neural_persistence`), birth
    (always 1), death (w', 0 for a component that never merges), persistence (birth − death), and src, dst,
    ky, kx of the forest's synapse (ky, kx −1 for a Linear layer; all empty for the component points).
    Unrolled, a kernel weight gives one point per forest edge it carries.
    """
    index = checkpoint.layer_index(layer)
    chosen = checkpoint.layers[index]
    counts = np.asarray(layer_forest(chosen, unroll, max_edges))
    forest = np.repeat(np.flatnonzero(counts), counts[counts > 0])
    death = _normalized(chosen.w[forest], _scales(checkpoint, normalize)[index])
    inputs, outputs, _ = graph_size(chosen, unroll)
    components = inputs + outputs - len(death)
    order = np.argsort(-death, kind="stable")
    ky, kx = (np.full(chosen.edges, -1) if chosen.conv is None else offset for offset in (chosen.ky, chosen.kx))
    frame = pd.DataFrame({"run": checkpoint.run, "level": checkpoint.level, "layer": index, "layer_name": chosen.name,
                          "graph": _graph_name(chosen, unroll), "birth": 1.0,
                          "death": np.concatenate([death[order], np.zeros(components)])})
    frame["persistence"] = frame["birth"] - frame["death"]
    for name, values in (("src", chosen.src), ("dst", chosen.dst), ("ky", ky), ("kx", kx)):
        frame[name] = pd.array(np.concatenate([values[forest][order], np.full(components, -1)]), dtype="Int64")
        frame.loc[len(death):, name] = pd.NA
    return frame


def _normalized(weights: np.ndarray, scale: float) -> np.ndarray:
    """|w| / W in float64 (all zero when W is: a layer stored with explicit zero weights)."""
    magnitude = np.abs(weights).astype(np.float64)
    return magnitude / scale if scale > 0 else magnitude
