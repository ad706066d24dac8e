"""Compare masks and weights: between runs at the same level (do different seeds converge to the same
masks?) and across the levels of one run (which synapses does IMP keep?).

Synapses are matched by position: (layer, src, dst) for a Linear layer, (layer, src, dst, ky, kx) for a
convolution, where a kernel weight is one synapse between an input and an output channel at its offset.
``layer`` is the weight layer's forward index and ``layer_name`` its tensor name. Results are tidy long
tables with one ``metric`` and ``value`` per row, ready for ``pivot``.

Example::

    >>> import numpy as np
    >>> from netarchive.model import Checkpoint, Layer
    >>> a = Checkpoint("a", 1, (Layer.from_dense("fc", np.array([[1.0, 2.0], [0.0, 3.0]])),))
    >>> b = Checkpoint("b", 1, (Layer.from_dense("fc", np.array([[1.5, 0.0], [0.0, 2.5]])),))
    >>> float(compare_pair(a, b).set_index("metric").value["jaccard"])
    0.6666666666666666
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations, pairwise

import numpy as np
import pandas as pd

from netarchive.errors import InputError
from netarchive.model import Checkpoint, Layer


def synapse_keys(layer: Layer) -> np.ndarray:
    """One integer per synapse, equal for the same position in two checkpoints of one architecture: of
    (dst, src) for a Linear layer, of (dst, src, ky, kx) for a convolution."""
    key = layer.dst.astype(np.int64) * layer.inputs + layer.src
    if layer.conv is not None:
        kh, kw = layer.conv.kernel
        key = (key * kh + layer.ky) * kw + layer.kx
    return key


def expected_jaccard(size_a: int, size_b: int, positions: int) -> float:
    """Exact E[|A∩B| / |A∪B|] for two independent uniformly random sets of the given sizes among
    ``positions`` (the overlap is hypergeometric)."""
    if size_a == 0 and size_b == 0:
        return float("nan")
    from scipy.special import gammaln

    def log_choose(n, k):
        return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)

    overlap = np.arange(max(0, size_a + size_b - positions), min(size_a, size_b) + 1)
    # The hypergeometric pmf from log-binomials: scipy.stats.hypergeom.pmf gives the same to ~1e-9 relative
    # but takes 0.1-0.5 s a layer (and half a second to import), this takes milliseconds.
    probability = np.exp(log_choose(size_a, overlap) + log_choose(positions - size_a, size_b - overlap)
                         - log_choose(positions, size_b))
    return float((probability * overlap / (size_a + size_b - overlap)).sum())


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r, NaN when either side is constant or has fewer than two values."""
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def layer_comparison(a: Layer, b: Layer) -> dict[str, float]:
    """Mask overlap of two layers of one shape, its chance level, and correlations of weights and degrees."""
    keys_a, keys_b = synapse_keys(a), synapse_keys(b)
    shared, in_a, in_b = np.intersect1d(keys_a, keys_b, assume_unique=True, return_indices=True)
    union = len(keys_a) + len(keys_b) - len(shared)
    degrees = {
        side: (np.bincount(layer.dst, minlength=layer.outputs), np.bincount(layer.src, minlength=layer.inputs))
        for side, layer in (("a", a), ("b", b))
    }
    return {
        "edges_a": len(keys_a),
        "edges_b": len(keys_b),
        "shared": len(shared),
        "jaccard": len(shared) / union if union else float("nan"),
        "jaccard_expected": expected_jaccard(len(keys_a), len(keys_b), a.dense_size),
        "weight_correlation": _correlation(a.w[in_a], b.w[in_b]),
        "in_degree_correlation": _correlation(*(degrees[s][0] for s in "ab")),
        "out_degree_correlation": _correlation(*(degrees[s][1] for s in "ab")),
    }


def _check_same_architecture(a: Checkpoint, b: Checkpoint) -> None:
    if a.widths != b.widths:
        raise InputError(
            f"{a.run} level {a.level} ({'-'.join(map(str, a.widths))}) and {b.run} level {b.level} "
            f"({'-'.join(map(str, b.widths))}) do not have the same architecture"
        )
    for x, y in zip(a.layers, b.layers):
        if (x.weight_shape, x.conv, x.source, x.target) != (y.weight_shape, y.conv, y.source, y.target):
            raise InputError(f"{a.run} level {a.level} and {b.run} level {b.level} do not have the same architecture: "
                             f"their layers {x.name} {x.weight_shape} and {y.name} {y.weight_shape} differ")


def _long(rows: list[tuple[int, Layer, dict]], keys: dict) -> pd.DataFrame:
    return pd.DataFrame([
        {**keys, "layer": l, "layer_name": layer.name, "metric": metric, "value": value}
        for l, layer, row in rows for metric, value in row.items()
    ])


def compare_pair(a: Checkpoint, b: Checkpoint) -> pd.DataFrame:
    """Per weight layer (``layer``, ``layer_name``): ``jaccard`` of the masks and its expectation for random
    masks of the same densities, ``weight_correlation`` on shared synapses, ``in_``/``out_degree_correlation``
    (Pearson) of neurons (channels of a convolution, counting kernel weights)."""
    _check_same_architecture(a, b)
    rows = [(l, x, layer_comparison(x, y)) for l, (x, y) in enumerate(zip(a.layers, b.layers))]
    return _long(rows, {"run_a": a.run, "run_b": b.run, "level_a": a.level, "level_b": b.level})


def compare_runs(checkpoints: Sequence[Checkpoint]) -> pd.DataFrame:
    """:func:`compare_pair` for every pair of the given checkpoints of one level (one per run): columns
    ``run_a, run_b, level, layer, layer_name, metric, value``."""
    if len({c.run for c in checkpoints}) < 2:
        raise InputError("comparing runs needs at least two runs")
    if len({c.level for c in checkpoints}) != 1:
        raise InputError("compare runs at one level at a time")
    table = pd.concat([compare_pair(a, b) for a, b in combinations(checkpoints, 2)], ignore_index=True)
    return table.drop(columns="level_b").rename(columns={"level_a": "level"})


def somers_d(score: np.ndarray, positive: np.ndarray) -> float:
    """Somers' D = 2·AUC − 1 of a binary outcome on a score (Mann–Whitney U with average ranks for ties)."""
    n_positive = int(positive.sum())
    n_negative = len(positive) - n_positive
    if n_positive == 0 or n_negative == 0:
        return float("nan")
    from scipy.stats import rankdata

    u = rankdata(score)[positive].sum() - n_positive * (n_positive + 1) / 2
    return float(2 * u / (n_positive * n_negative) - 1)


def survival(levels: Iterable[Checkpoint]) -> pd.DataFrame:
    """Across consecutive levels A -> B of one run, per weight layer (``layer``, ``layer_name``; synapses
    matched as in :func:`synapse_keys`): synapses ``kept``, the fraction of A's
    ``|B|`` strongest synapses (by |w| at A) that survive to B, and ``rank_correlation``, Somers' D of
    survival on |w| at A: 1 when exactly the strongest survived (pure magnitude pruning), 0 for survival
    unrelated to magnitude, −1 when the weakest survived. ``levels`` may be a generator."""
    rows = []
    for a, b in pairwise(levels):  # two checkpoints in memory at a time
        _check_same_architecture(a, b)
        for l, (x, y) in enumerate(zip(a.layers, b.layers)):
            survived = np.isin(synapse_keys(x), synapse_keys(y))
            strongest = np.argsort(-np.abs(x.w), kind="stable")[: y.edges]
            rows.append(
                {
                    "run": a.run,
                    "level_a": a.level,
                    "level_b": b.level,
                    "layer": l,
                    "layer_name": x.name,
                    "edges_a": x.edges,
                    "edges_b": y.edges,
                    "kept": int(survived.sum()),
                    "kept_fraction": survived.mean() if x.edges else float("nan"),
                    "strongest_kept_fraction": survived[strongest].mean() if y.edges else float("nan"),
                    "rank_correlation": somers_d(np.abs(x.w), survived),
                }
            )
    return pd.DataFrame(rows)
