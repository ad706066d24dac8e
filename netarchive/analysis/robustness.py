"""Structure and function side by side as synapses are removed (the question of seed 000): at the same
kept fractions and in the same orders as :func:`netarchive.analysis.percolation.percolation`, the giant
component, whether the inputs still reach the outputs, and the accuracy (or MSE) of the network that is
left.

The network at kept fraction f is the first round(f·E) synapses of the order (strongest |w| first for
``descending``, as magnitude pruning keeps them; weakest first for ``ascending``; seeded random orders for
``random``, averaged over ``samples``). Each point is one forward pass on the surviving synapses (sparse or
dense by density, batched), so the curve costs about as many forward passes as it has points: the points are
visited in increasing order and a Linear layer's dense matrix is built once and only receives the synapses
kept since the previous point (a convolution's kernel is rebuilt at each point), and ``inputs_connected`` at
every point comes from one backward pass (the bottleneck rank of each input's best path). The results are
those of :func:`forward` and :func:`netarchive.analysis.components.reachable` on each subnetwork
(bench/robustness.md).

Convolutional and residual networks: the synapses removed are kernel weights; the giant fraction and the
inputs still connected follow the real data flow, through residual additions, concatenations and
flattens, which are never removed (:mod:`netarchive.analysis.graphs`); the accuracy is the forward pass
of the program (batch norms, pools, additions) on the synapses kept.

Example::

    >>> import numpy as np
    >>> from netarchive.model import Checkpoint, Layer
    >>> net = Checkpoint("r", 0, (Layer.from_dense("fc", np.array([[2.0, 0.0], [0.0, 1.0]])),))
    >>> x, y = np.eye(2, dtype=np.float32), np.array([0, 1])
    >>> robustness(net, x, y, "descending", points=3)[["edges_kept", "accuracy"]].values.tolist()
    [[0.0, 0.5], [1.0, 0.5], [2.0, 1.0]]
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from netarchive.analysis import forward as forward_module
from netarchive.analysis.forward import apply, check_inputs, layer_operator, scores
from netarchive.analysis.graphs import Graph, bottleneck_to_outputs, graph
from netarchive.analysis.percolation import (
    RANDOM_ORDERS, check_order, check_samples, checkpoint_merges, curve_points, edge_order,
)
from netarchive.model import Checkpoint


def _one_ordering(checkpoint: Checkpoint, g: Graph, x, y, order: str, seed: int, sample: int, edges_kept) -> pd.DataFrame:
    merges = checkpoint_merges(checkpoint, order, seed, sample, g)
    giant = merges.quantities(merges.state(edges_kept))["giant_fraction"]
    ordered = edge_order(checkpoint, order, seed, sample)
    rank = np.empty(checkpoint.edges, dtype=np.int64)
    rank[ordered] = np.arange(checkpoint.edges)
    # an input reaches an output once the first n synapses are kept iff its bottleneck rank is < n: one
    # backward pass gives inputs_connected at every point
    joins = bottleneck_to_outputs(g, rank)[: g.widths[0]]
    outputs = _outputs(checkpoint, x, ordered, rank, edges_kept)
    return pd.DataFrame([
        {"giant_fraction": giant_, "inputs_connected": float((joins < n).mean()), **scores(out, y)}
        for n, giant_, out in zip(edges_kept, giant, outputs)
    ])


def _outputs(checkpoint: Checkpoint, x, ordered: np.ndarray, rank: np.ndarray, edges_kept) -> list[np.ndarray]:
    """The network's outputs with the first n edges of the order kept, for each n of ``edges_kept``; the same
    operators as :func:`forward` on the subnetwork, but a layer's dense matrix, once its density passes
    :data:`~netarchive.analysis.forward.DENSE_ABOVE`, is built once and afterwards only receives the synapses
    kept since the previous point (each synapse is written once over the whole curve)."""
    layers = checkpoint.layers
    bounds = np.cumsum([0] + [layer.edges for layer in layers])
    dense: list[np.ndarray | None] = [None] * len(layers)
    filled = 0  # the dense matrices hold the first ``filled`` edges of the order
    outputs: list[np.ndarray | None] = [None] * len(edges_kept)
    for point in np.argsort(edges_kept, kind="stable"):
        n = int(edges_kept[point])
        new = ordered[filled:n]
        operators = []
        for l, layer in enumerate(layers):
            if layer.conv is not None:  # a kernel is small: rebuilt from the synapses kept
                operators.append(layer_operator(layer, rank[bounds[l] : bounds[l + 1]] < n))
                continue
            if dense[l] is not None:
                chosen = new[(new >= bounds[l]) & (new < bounds[l + 1])] - bounds[l]
                dense[l][layer.dst[chosen], layer.src[chosen]] = layer.w[chosen]
                operators.append(_torch_view(dense[l]))
                continue
            keep = rank[bounds[l] : bounds[l + 1]] < n
            if np.count_nonzero(keep) > forward_module.DENSE_ABOVE * layer.dense_size:
                dense[l] = np.zeros((layer.outputs, layer.inputs), dtype=np.float32)
                dense[l][layer.dst[keep], layer.src[keep]] = layer.w[keep]
                operators.append(_torch_view(dense[l]))
            else:
                operators.append(layer_operator(layer, keep))
        filled = n
        outputs[point] = apply(checkpoint, operators, x)
    return outputs


def _torch_view(matrix: np.ndarray):
    import torch

    return torch.from_numpy(matrix)


def robustness(
    checkpoint: Checkpoint,
    x: np.ndarray,
    y: np.ndarray,
    order: str = "descending",
    points: int = 21,
    samples: int = RANDOM_ORDERS,
    seed: int = 0,
    kept=None,
) -> pd.DataFrame:
    """Rows ``kept``, ``edges_kept`` (synapses), ``giant_fraction``, ``inputs_connected`` and ``accuracy`` and ``loss``
    (class labels) or ``mse`` (float targets); for ``random`` the mean over ``samples`` orderings, with
    ``samples`` and ``*_std`` columns (ddof = 1). At kept fraction 1 the scores are those of ``eval``; at 0
    the network outputs its biases alone. ``kept`` gives the fractions explicitly instead of ``points``."""
    check_order(order)
    check_samples(samples)
    check_inputs(checkpoint, x)
    fractions, edges_kept = curve_points(points, kept, checkpoint.edges)
    g = graph(checkpoint)
    orderings = [
        _one_ordering(checkpoint, g, x, y, order, seed, sample, edges_kept)
        for sample in range(samples if order == "random" else 1)
    ]
    stacked = np.stack([frame.to_numpy() for frame in orderings])
    names = list(orderings[0].columns)
    frame = pd.DataFrame({"run": checkpoint.run, "level": checkpoint.level, "order": order,
                          "kept": fractions, "edges_kept": edges_kept})
    for i, name in enumerate(names):
        frame[name] = stacked[:, :, i].mean(axis=0)
    if order == "random":
        frame.insert(3, "samples", len(orderings))
        for i, name in enumerate(names):
            frame[f"{name}_std"] = stacked[:, :, i].std(axis=0, ddof=1) if len(orderings) > 1 else np.nan
    return frame
