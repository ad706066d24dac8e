"""Percolation curves of a checkpoint and its percolation thresholds (seed 000).

Edges are added back one by one in an order — strongest |w| first (``descending``, the order magnitude
pruning keeps them), weakest first (``ascending``) or at random (``random``, Bernoulli percolation) — and the
giant component, the second largest, the number of components and the mean finite-cluster size are read
after exactly ``round(f·E)`` edges. Algorithm: Newman & Ziff, PRE 64, 016706 (2001), with one shortcut: for
any order only the edges of the spanning forest of that order (Kruskal) merge clusters, at most V − 1 of
them, and they all come early (the giant component spans the network after ~1 % of a dense layer's edges).
So only a prefix of the order is sorted (a partial sort up to the last neuron's first edge, grown if a later
edge still joins two components), a minimum spanning tree on rank weights picks the merging edges, and a
Python union-find over those merges alone records S1, S2 and Σs² at every merge; the state after n edges is
the state after the last merge at a position ≤ n. The whole curve costs about one connected-components
call (bench/percolation.md). :func:`edge_order` and :func:`kept_points` are the orders and points that the
robustness analyses share.

Example::

    >>> import numpy as np
    >>> from netarchive.model import Checkpoint, Layer
    >>> chain = [Layer.from_dense(f"fc{i}", np.array([[w]])) for i, w in enumerate([5.0, 2.0, 4.0, 1.0, 3.0])]
    >>> ckpt = Checkpoint("r", 0, chain)                     # the path 0-1-2-3-4-5
    >>> percolation(ckpt, "descending", points=6)["giant_fraction"].mul(6).tolist()
    [1.0, 2.0, 2.0, 2.0, 4.0, 6.0]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from netarchive.analysis.degrees import degree_moments
from netarchive.errors import InputError
from netarchive.model import Checkpoint

ORDERS = ("descending", "ascending", "random")
MAX_POINTS = 100_000
"""More points than this say nothing a plot can show, and would fill the memory."""
QUANTITIES = ("giant_fraction", "second_fraction", "components", "mean_cluster_size")
RANDOM_ORDERS = 10
"""Random orderings averaged when none are asked for: by the measured threshold (``query threshold``, the
marks of ``plot percolation`` and ``plot robustness``, ``query summary``) and by random-order curves, so
that a figure and a table of the same checkpoint give the same threshold."""


# --- orders and points (shared with the functional-robustness analyses) -------------------------------

def kept_points(points: int, edges: int) -> tuple[np.ndarray, np.ndarray]:
    """``points`` evenly spaced kept fractions f = 0 … 1 and the edges kept at each, round(f·E) (halves up).

    >>> kept_points(5, 10)
    (array([0.  , 0.25, 0.5 , 0.75, 1.  ]), array([ 0,  3,  5,  8, 10]))
    """
    if int(points) != points or not 2 <= points <= MAX_POINTS:
        raise InputError(
            f"--points must be an integer from 2 (the kept fractions 0 and 1) to {MAX_POINTS:,}, got {points}"
        )
    points = int(points)
    i = np.arange(points, dtype=np.int64)
    return i / (points - 1), (2 * i * edges + (points - 1)) // (2 * (points - 1))


def curve_points(points: int, kept, edges: int) -> tuple[np.ndarray, np.ndarray]:
    """The kept fractions of a curve and the edges kept at each: :func:`kept_points` when ``kept`` is None,
    else the given fractions (e.g. log-spaced for a plot), rounded the same way."""
    if kept is None:
        return kept_points(points, edges)
    fractions = np.asarray(kept, dtype=np.float64)
    if fractions.ndim != 1 or not np.all((fractions >= 0) & (fractions <= 1)):
        raise InputError("kept fractions must lie between 0 and 1")
    return fractions, np.floor(fractions * edges + 0.5).astype(np.int64)


def order_key(checkpoint: Checkpoint, order: str, seed: int = 0, sample: int = 0) -> np.ndarray:
    """The sort key of an edge order over ``checkpoint.edge_list()``: edges enter by ascending key, ties by
    global (src, dst), so the order never depends on how the edges happen to be stored.

    ``random`` keys are a bijective 64-bit hash (splitmix64) of the edge's (src, dst) offset by the stream
    ``SeedSequence(seed, spawn_key=(sample,))``: distinct for every edge, and ordering s of seed k is the same
    in every analysis and from every store.
    """
    src, dst, w, _ = checkpoint.edge_list()
    if order == "descending":
        return -np.abs(w)
    if order == "ascending":
        return np.abs(w)
    if order == "random":
        return _random_key(src, dst, seed, sample)
    raise InputError(f"unknown order {order!r}: choose one of {', '.join(ORDERS)}")


def _random_key(src: np.ndarray, dst: np.ndarray, seed: int, sample: int) -> np.ndarray:
    offset = np.random.SeedSequence(int(seed), spawn_key=(int(sample),)).generate_state(1, np.uint64)
    x = src.astype(np.uint64)
    x <<= np.uint64(32)
    x |= dst.astype(np.uint64)
    x += offset                                   # wraps modulo 2**64, still one-to-one
    for shift, multiplier in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        x ^= x >> np.uint64(shift)
        x *= np.uint64(multiplier)
    x ^= x >> np.uint64(31)
    return x


def edge_order(checkpoint: Checkpoint, order: str, seed: int = 0, sample: int = 0) -> np.ndarray:
    """Indices into ``checkpoint.edge_list()`` in the order the edges are kept: the first ``edges_kept`` of
    them (see :func:`kept_points`) are the network at that point of the curve."""
    src, dst, _, _ = checkpoint.edge_list()
    return _in_order(np.arange(len(src)), order_key(checkpoint, order, seed, sample), src, dst)


def _in_order(chosen: np.ndarray, key: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The edges ``chosen`` (all edges of key ≤ some cut) in the order: by key, ties by (src, dst). The same
    as ``np.lexsort((dst, src, key))`` over ``chosen``, in about half the time: a plain (unstable) sort, then
    only the runs of equal keys are ordered by (src, dst)."""
    ordered = chosen[np.argsort(key[chosen])]
    k = key[ordered]
    tie = k[1:] == k[:-1]
    if tie.any():  # re-sort only the runs of equal keys, which stay where they are
        member = np.zeros(len(k), dtype=bool)
        member[1:] |= tie
        member[:-1] |= tie
        where = np.flatnonzero(member)
        runs = ordered[where]
        ordered[where] = runs[np.lexsort((dst[runs], src[runs], key[runs]))]
    return ordered


# --- the curve of one ordering --------------------------------------------------------------------------

@dataclass(frozen=True)
class Merges:
    """The curve of one ordering as a step function: state m (0 = no edge) holds from the ``position[m]``-th
    edge (1-based; 0 for m = 0) until the next merge. ``s1``, ``s2``, ``sum_sq`` have one entry per state."""

    neurons: int
    edges: int
    position: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    sum_sq: np.ndarray

    def state(self, edges_kept) -> np.ndarray:
        """The state index after ``edges_kept`` edges of the order."""
        return np.searchsorted(self.position, edges_kept, side="right") - 1

    def quantities(self, states=None) -> dict[str, np.ndarray]:
        """:data:`QUANTITIES` at the given states (all states by default)."""
        states = np.arange(len(self.position)) if states is None else states
        v = self.neurons
        s1, s2, sum_sq = self.s1[states], self.s2[states], self.sum_sq[states]
        finite = v - s1
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_cluster = np.where(finite > 0, (sum_sq - s1 * s1) / np.maximum(finite, 1), 0.0)
        return {
            "giant_fraction": s1 / v,
            "second_fraction": s2 / v,
            "components": (v - states).astype(np.float64),
            "mean_cluster_size": mean_cluster,
        }


def merges(neurons: int, src: np.ndarray, dst: np.ndarray, key: np.ndarray, first: int | None = None) -> Merges:
    """The exact curve of the graph (``neurons``, undirected edges ``src``–``dst``) with edges added by
    ascending ``key`` (ties by (src, dst)).

    Only a prefix of the order is sorted. The first edge of every neuron always merges, so the prefix starts
    as all edges up to the latest of those first edges (or the first ``first`` edges, when given); its
    spanning forest (minimum spanning tree on rank weights) gives the merges, and the prefix doubles until no
    later edge joins two of its components.
    """
    edges = len(key)
    if first is None and edges:
        top = np.inf if key.dtype.kind == "f" else np.iinfo(key.dtype).max
        earliest = np.full(neurons, top, dtype=key.dtype)
        np.minimum.at(earliest, src, key)
        np.minimum.at(earliest, dst, key)
        touched = np.zeros(neurons, dtype=bool)
        touched[src] = touched[dst] = True
        chosen = np.flatnonzero(key <= earliest[touched].max())
    else:
        chosen = _first(key, min(edges, first or 1))
    while True:
        prefix = _in_order(chosen, key, src, dst)
        rank = sp.csr_matrix(
            (np.arange(1, len(prefix) + 1, dtype=np.float64), (src[prefix], dst[prefix])), shape=(neurons, neurons)
        )
        forest = minimum_spanning_tree(rank).tocoo()
        if len(prefix) == edges:
            break
        _, labels = connected_components(forest, directed=False)
        if np.array_equal(labels[src], labels[dst]):
            break
        chosen = _first(key, min(edges, 2 * len(prefix)))
    step = np.argsort(forest.data)
    return _union_find(neurons, edges, forest.row[step], forest.col[step], forest.data[step].astype(np.int64))


def _first(key: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` smallest keys and of every key tied with the last of them (a partial sort)."""
    if count >= len(key):
        return np.arange(len(key))
    return np.flatnonzero(key <= np.partition(key, count - 1)[count - 1])


def _union_find(neurons: int, edges: int, u: np.ndarray, v: np.ndarray, position: np.ndarray) -> Merges:
    """Merge the forest edges in order (union by size), recording S1, S2 and Σs² after each merge.

    S2 comes from a count of clusters per size: after a merge it is the old S1 (if a cluster of that size is
    left), the new cluster, or the old S2 or less, found by stepping down from there; the steps down are
    paid for by the smaller sides of the merges, O(V log V) in all.
    """
    parent = list(range(neurons))
    size = [1] * neurons
    count = [0] * (neurons + 1)
    if neurons:
        count[1] = neurons
    s1 = min(neurons, 1)
    s2 = 1 if neurons > 1 else 0
    first, second, grow = [s1], [s2], [0]
    for a, b in zip(u.tolist(), v.tolist()):
        while parent[a] != a:
            a = parent[a]
        while parent[b] != b:
            b = parent[b]
        sa, sb = size[a], size[b]
        if sa < sb:
            a, b, sa, sb = b, a, sb, sa
        new = sa + sb
        parent[b] = a
        size[a] = new
        count[sa] -= 1
        count[sb] -= 1
        count[new] += 1
        old1, old2 = s1, s2
        if new > s1:
            s1 = new
        if count[s1] >= 2:
            s2 = s1
        elif old1 < s1 and count[old1]:
            s2 = old1
        else:
            while old2 and not count[old2]:
                old2 -= 1
            s2 = new if old2 < new < s1 else old2
        first.append(s1)
        second.append(s2)
        grow.append(2 * sa * sb)
    return Merges(
        neurons=neurons,
        edges=edges,
        position=np.concatenate([[0], position]).astype(np.int64),
        s1=np.array(first, dtype=np.float64),
        s2=np.array(second, dtype=np.float64),
        sum_sq=neurons + np.cumsum(np.array(grow, dtype=np.float64)),
    )


def checkpoint_merges(checkpoint: Checkpoint, order: str, seed: int = 0, sample: int = 0) -> Merges:
    """The :class:`Merges` of one ordering of a checkpoint's edges (see :func:`order_key`)."""
    src, dst, _, _ = checkpoint.edge_list()
    return merges(checkpoint.neurons, src, dst, order_key(checkpoint, order, seed, sample))


# --- curves ---------------------------------------------------------------------------------------------

def percolation(
    checkpoint: Checkpoint,
    order: str = "descending",
    points: int = 101,
    samples: int = RANDOM_ORDERS,
    seed: int = 0,
    canonical: bool = False,
    kept=None,
) -> pd.DataFrame:
    """The percolation curve at ``points`` evenly spaced kept fractions (or at the fractions ``kept``).

    Rows: ``kept``, ``edges_kept``, then :data:`QUANTITIES` (fractions of all neurons; ``mean_cluster_size``
    = (Σs² − S1²)/(V − S1), 0 when no finite cluster is left). ``random`` averages ``samples`` orderings and
    adds ``*_std`` columns (standard deviation across orderings, ddof = 1). ``canonical`` (random only)
    turns the curve into one of occupation probability ``p`` by the binomial convolution
    Q(p) = Σ_n C(E,n) pⁿ(1−p)^(E−n) Q_n; the rows then have ``p`` and ``mean_edges`` = p·E instead.
    """
    check_order(order)
    if canonical and order != "random":
        raise InputError("--canonical converts the random-order curve: use it with --order random")
    check_samples(samples)
    edges = checkpoint.edges
    fractions, edges_kept = curve_points(points, kept, edges)
    runs = [checkpoint_merges(checkpoint, order, seed, s) for s in range(samples if order == "random" else 1)]
    if canonical:
        values = [canonical_curve(m, fractions) for m in runs]
        head = {"p": fractions, "mean_edges": fractions * edges}
    else:
        values = [m.quantities(m.state(edges_kept)) for m in runs]
        head = {"kept": fractions, "edges_kept": edges_kept}
    frame = pd.DataFrame({"run": checkpoint.run, "level": checkpoint.level, "order": order, **head})
    stacked = {name: np.stack([v[name] for v in values]) for name in QUANTITIES}
    for name in QUANTITIES:
        frame[name] = stacked[name].mean(axis=0)
    if order != "random":  # one ordering: the number of components is a count, not a mean
        frame["components"] = frame["components"].round().astype(np.int64)
    if order == "random":
        frame.insert(3, "samples", len(runs))
        for name in QUANTITIES:
            frame[f"{name}_std"] = stacked[name].std(axis=0, ddof=1) if len(runs) > 1 else np.nan
    return frame


def canonical_curve(run: Merges, p) -> dict[str, np.ndarray]:
    """Newman–Ziff binomial convolution of one ordering's curve at occupation probabilities ``p``.

    The curve is constant between merges, so Q(p) = Σ_m Q_m [F(t_{m+1} − 1) − F(t_m − 1)] with F the
    binomial(E, p) CDF; only the merges within a few standard deviations of pE are evaluated.
    """
    from scipy.special import bdtr  # the binomial CDF (scipy.stats costs a second to import)

    p = np.atleast_1d(np.asarray(p, dtype=np.float64))
    edges = run.edges
    per_state = run.quantities()
    ends = np.append(run.position[1:] - 1, edges)           # last n of each state
    out = {name: np.empty(len(p)) for name in QUANTITIES}
    for i, q in enumerate(p):
        spread = 40 * np.sqrt(edges * q * (1 - q)) + 20
        lo = np.searchsorted(ends, edges * q - spread, side="left")
        hi = np.searchsorted(ends, edges * q + spread, side="right")
        cdf = bdtr(ends[lo:hi], edges, q)
        cdf = np.concatenate([[0.0], cdf, [1.0]])
        weight = np.diff(cdf)                               # states lo … hi (hi absorbs the upper tail)
        states = np.arange(lo, min(hi, len(ends) - 1) + 1)
        weight = weight[: len(states)]
        for name in QUANTITIES:
            out[name][i] = float(np.dot(weight, per_state[name][states]))
    return out


# --- thresholds -----------------------------------------------------------------------------------------

def thresholds(checkpoint: Checkpoint, samples: int = RANDOM_ORDERS, seed: int = 0) -> pd.DataFrame:
    """One row of percolation thresholds, each a kept fraction of the checkpoint's own edges.

    - ``p_c_molloy_reed``: ⟨k⟩/(⟨k²⟩ − ⟨k⟩) (Molloy & Reed 1995; Cohen et al., PRL 85, 4626, 2000);
    - ``p_c_branching``: 1/λ_max of the tridiagonal layer matrix K_{l,l+1} = e_l/√(n_l n_{l+1}) (e_l synapses
      of layer l; √(n_l n_{l+1}) when dense), the mean-field threshold of a layered network;
    - ``p_c_measured``: where the mean finite-cluster size, averaged over ``samples`` random orderings, peaks;
    - ``p_c_seed``: the seed's 1/(2N − 1) for equal hidden widths N (NaN otherwise), times dense/own edges.
    """
    check_samples(samples)
    k1, k2 = degree_moments(checkpoint)
    widths = np.array(checkpoint.widths, dtype=np.float64)
    edges = checkpoint.edges
    coupling = np.array([layer.edges for layer in checkpoint.layers]) / np.sqrt(widths[:-1] * widths[1:])
    lam = float(np.linalg.eigvalsh(np.diag(coupling, 1) + np.diag(coupling, -1))[-1])
    hidden = checkpoint.widths[1:-1]
    seed_dense = 1 / (2 * hidden[0] - 1) if hidden and len(set(hidden)) == 1 else np.nan
    return pd.DataFrame([{
        "run": checkpoint.run,
        "level": checkpoint.level,
        "p_c_molloy_reed": k1 / (k2 - k1) if k2 > k1 else np.nan,
        "p_c_branching": 1 / lam if lam > 0 else np.nan,
        "p_c_measured": measured_threshold(checkpoint, samples, seed) if edges else np.nan,
        "p_c_seed": seed_dense * checkpoint.dense_edges / edges if edges else np.nan,
    }])


def measured_threshold(checkpoint: Checkpoint, samples: int = RANDOM_ORDERS, seed: int = 0) -> float:
    """Kept fraction n/E where the mean finite-cluster size averaged over random orderings peaks (exact: the
    averaged curve is evaluated at every merge of every ordering)."""
    runs = [checkpoint_merges(checkpoint, "random", seed, s) for s in range(samples)]
    steps = np.unique(np.concatenate([m.position for m in runs]))
    curve = np.mean([m.quantities(m.state(steps))["mean_cluster_size"] for m in runs], axis=0)
    return float(steps[int(np.argmax(curve))] / checkpoint.edges)


def check_order(order: str) -> None:
    if order not in ORDERS:
        raise InputError(f"unknown order {order!r}: choose one of {', '.join(ORDERS)}")


def check_samples(samples: int) -> None:
    """Refuse a count of random orderings that is not a positive integer (whatever the order)."""
    if int(samples) != samples or samples < 1:
        raise InputError(f"--samples must be a positive integer, got {samples}")
