"""Neural persistence: the p-norm of each layer's zeroth-order persistence diagram (Rieck et al., ICLR 2019,
arXiv 1812.09764; reference code BorgwardtLab/Neural-Persistence), a measure of structural complexity
that grows as a network learns.

Convention (the reference one): weights are normalised by the largest |w| of the whole network
(``normalize="layer"``: of each layer), w' = |w| / W. Every neuron of a layer is born at 1 and edges
enter in descending w'; an edge that merges two components adds the point (1, w'), so the points are
the maximum-spanning-forest edges (:mod:`netarchive.analysis.spanning`), and each component that never
merges (isolated neurons included) adds (1, 0). With c components and forest F::

    NP_l = ( c + sum_{e in F} (1 - w'_e)^p )^(1/p),    normalised: NP_l / (|V_l| - 1)^(1/p)

The normalised value can slightly exceed 1 because of the (1, 0) points. The network values are the sum
of NP_l and the mean of the normalised NP_l. Scale-invariant: 2·W gives the same values as W.

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

from netarchive.analysis.spanning import _layer_frame, _network_row, forest_mask, spanning_forests
from netarchive.errors import InputError
from netarchive.model import Checkpoint

NORMALIZATIONS = ("global", "layer")


def _scales(checkpoint: Checkpoint, normalize: str) -> list[float]:
    """The W that divides |w| in each layer: the network's largest |w|, or each layer's."""
    if normalize not in NORMALIZATIONS:
        raise InputError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, got {normalize!r}")
    largest = [float(np.abs(layer.w).max()) if layer.edges else 0.0 for layer in checkpoint.layers]
    return largest if normalize == "layer" else [max(largest)] * len(largest)


def convention(p: float, normalize: str) -> str:
    """A one-line name of the convention, for the output's title and metadata."""
    return (
        f"Rieck et al. 2019: w' = |w| / max |w| of the {'network' if normalize == 'global' else 'layer'}, "
        f"forest points (1, w') plus (1, 0) per component, p = {p:g}, normalised by (|V| - 1)^(1/p)"
    )


def neural_persistence(
    checkpoint: Checkpoint, p: float = 2.0, normalize: str = "global", forests: list[np.ndarray] | None = None
) -> pd.DataFrame:
    """Neural persistence of every layer and of the network (see the module docstring).

    Layer rows (``scope = layer``): inputs, outputs, edges, components, msf_edges, np, np_normalized.
    One ``scope = network`` row: edges, msf_edges, np_total (sum), np_normalized_mean (mean over layers).
    ``forests`` (from :func:`~netarchive.analysis.spanning.spanning_forests`) can be passed to reuse them.
    """
    if not p > 0:
        raise InputError(f"p must be positive, got {p}")
    forests = forests if forests is not None else spanning_forests(checkpoint)
    scales = _scales(checkpoint, normalize)
    columns = {name: [] for name in ("inputs", "outputs", "edges", "components", "msf_edges", "np", "np_normalized")}
    for layer, forest, scale in zip(checkpoint.layers, forests, scales):
        vertices = layer.inputs + layer.outputs
        weights = _normalized(layer.w[forest], scale)
        components = vertices - len(weights)
        value = (components + np.sum((1.0 - weights) ** p)) ** (1.0 / p)
        normalized = value / (vertices - 1) ** (1.0 / p) if vertices > 1 else np.nan
        for name, item in zip(
            columns, (layer.inputs, layer.outputs, layer.edges, components, len(weights), value, normalized)
        ):
            columns[name].append(item)
    frame = _layer_frame(checkpoint, columns)
    frame["np_total"] = np.nan
    frame["np_normalized_mean"] = np.nan
    frame = _network_row(
        frame,
        checkpoint,
        {
            "edges": int(frame["edges"].sum()),
            "msf_edges": int(frame["msf_edges"].sum()),
            "np_total": float(frame["np"].sum()),
            "np_normalized_mean": float(frame["np_normalized"].mean()),
        },
    )
    frame.attrs["convention"] = convention(p, normalize)
    return frame


def persistence_diagram(checkpoint: Checkpoint, layer: int | str, normalize: str = "global") -> pd.DataFrame:
    """The persistence diagram of one layer (by index or name): one row per point.

    Columns: run, level, layer, birth (always 1), death (w', 0 for a component that never merges),
    persistence (birth − death), and src/dst of the forest edge (empty for the component points).
    """
    index = _layer_index(checkpoint, layer)
    chosen = checkpoint.layers[index]
    forest = forest_mask(chosen)
    scale = _scales(checkpoint, normalize)[index]
    death = _normalized(chosen.w[forest], scale)
    components = chosen.inputs + chosen.outputs - len(death)
    order = np.argsort(-death, kind="stable")
    frame = pd.DataFrame(
        {
            "run": checkpoint.run,
            "level": checkpoint.level,
            "layer": chosen.name,
            "birth": 1.0,
            "death": np.concatenate([death[order], np.zeros(components)]),
            "src": pd.array(np.concatenate([chosen.src[forest][order], np.full(components, -1)]), dtype="Int64"),
            "dst": pd.array(np.concatenate([chosen.dst[forest][order], np.full(components, -1)]), dtype="Int64"),
        }
    )
    frame.loc[len(death):, ["src", "dst"]] = pd.NA
    frame.insert(5, "persistence", frame["birth"] - frame["death"])
    return frame


def _normalized(weights: np.ndarray, scale: float) -> np.ndarray:
    """|w| / W in float64 (all zero when W is: a layer stored with explicit zero weights)."""
    magnitude = np.abs(weights).astype(np.float64)
    return magnitude / scale if scale > 0 else magnitude


def _layer_index(checkpoint: Checkpoint, layer: int | str) -> int:
    names = checkpoint.layer_names
    if isinstance(layer, str) and layer in names:
        return names.index(layer)
    try:
        index = int(layer)
    except (TypeError, ValueError):
        index = -1
    if not 0 <= index < len(names):
        raise InputError(f"no layer {layer!r} in {checkpoint.run}/{checkpoint.level}: give an index or one of {', '.join(names)}")
    return index
