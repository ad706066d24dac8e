"""Structure and function side by side as synapses are removed (the question of seed 000): at the same
kept fractions and in the same orders as :func:`netarchive.analysis.percolation.percolation`, the giant
component, whether the inputs still reach the outputs, and the accuracy (or MSE) of the network that is
left.

The network at kept fraction f is the first round(f·E) synapses of the order (strongest |w| first for
``descending``, as magnitude pruning keeps them; weakest first for ``ascending``; seeded random orders for
``random``, averaged over ``samples``). Each point is one forward pass on the surviving synapses (sparse or
dense by density, batched), so the curve costs about as many forward passes as it has points.

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

from netarchive.analysis.components import reachable
from netarchive.analysis.forward import check_inputs, forward, scores
from netarchive.analysis.percolation import check_order, checkpoint_merges, curve_points, edge_order
from netarchive.model import Checkpoint


def _one_ordering(checkpoint: Checkpoint, x, y, order: str, seed: int, sample: int, edges_kept) -> pd.DataFrame:
    merges = checkpoint_merges(checkpoint, order, seed, sample)
    giant = merges.quantities(merges.state(edges_kept))["giant_fraction"]
    rank = np.empty(checkpoint.edges, dtype=np.int64)
    rank[edge_order(checkpoint, order, seed, sample)] = np.arange(checkpoint.edges)
    rows = []
    for n, giant_fraction in zip(edges_kept, giant):
        network = checkpoint.subnetwork(rank < n)
        rows.append({
            "giant_fraction": giant_fraction,
            "inputs_connected": float(reachable(network, forward=False).mean()),
            **scores(forward(network, x), y),
        })
    return pd.DataFrame(rows)


def robustness(
    checkpoint: Checkpoint,
    x: np.ndarray,
    y: np.ndarray,
    order: str = "descending",
    points: int = 21,
    samples: int = 5,
    seed: int = 0,
    kept=None,
) -> pd.DataFrame:
    """Rows ``kept``, ``edges_kept``, ``giant_fraction``, ``inputs_connected`` and ``accuracy`` and ``loss``
    (class labels) or ``mse`` (float targets); for ``random`` the mean over ``samples`` orderings, with
    ``samples`` and ``*_std`` columns (ddof = 1). At kept fraction 1 the scores are those of ``eval``; at 0
    the network outputs its biases alone. ``kept`` gives the fractions explicitly instead of ``points``."""
    check_order(order)
    check_inputs(checkpoint, x)
    fractions, edges_kept = curve_points(points, kept, checkpoint.edges)
    orderings = [
        _one_ordering(checkpoint, x, y, order, seed, sample, edges_kept)
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
