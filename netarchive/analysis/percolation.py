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
the state after the last merge at a position ≤ n. No order of a channel graph sorts its synapses: the
merges of a magnitude order are Kruskal's on the union of the layers' own spanning forests
(:func:`magnitude_merges`), those of a random order filter-Kruskal's forest (:func:`random_merges`). A
whole curve costs one to three connected-components calls (bench/percolation.md). :func:`edge_order` and
:func:`kept_points` are the orders and points that the robustness analyses share.

Convolutional and residual networks (:mod:`netarchive.analysis.graphs`): the edges removed are the
synapses, one per surviving kernel weight; the weightless connections of residual additions,
concatenations and flattens are permanent — present at every point of every order, they merge their
neurons' clusters before the first synapse — so curves follow the real data flow. ``unroll=True`` reads
the unit graph of (channel, y, x), where a kernel weight enters (or leaves) with all its positions at once;
kept fractions are of the checkpoint's synapses on both graphs.

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
from netarchive.analysis.graphs import Graph, graph
from netarchive.analysis import spanning
from netarchive.errors import InputError
from netarchive.model import Checkpoint

ORDERS = ("descending", "ascending", "random")
MAGNITUDE_ORDERS = ("descending", "ascending")
_CHUNK = 1 << 16
"""Synapses per chunk of :func:`_random_key`: its eight-byte temporaries stay in the cache."""
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
    global (src, dst) and for kernel weights by (ky, kx) (see :func:`edge_order`), so the order never depends
    on how the edges happen to be stored.

    ``random`` keys are a 64-bit hash (splitmix64) of the edge's (src, dst), and for a kernel weight of its
    (ky, kx), offset by the stream ``SeedSequence(seed, spawn_key=(sample,))``: each kernel weight of a
    channel pair gets its own key (bijective, so distinct for every edge, on Linear layers), and ordering s
    of seed k is the same in every analysis and from every store.
    """
    src, dst, w, _ = checkpoint.edge_list()
    if order == "descending":
        return -np.abs(w)
    if order == "ascending":
        return np.abs(w)
    if order == "random":
        return _random_key(src, dst, seed, sample, _kernel_offsets(checkpoint))
    raise InputError(f"unknown order {order!r}: choose one of {', '.join(ORDERS)}")


def _kernel_offsets(checkpoint: Checkpoint) -> tuple[np.ndarray, np.ndarray] | None:
    """``(ky, kx)`` of every synapse (−1 for Linear ones), or None when there is no convolution."""
    if all(layer.conv is None for layer in checkpoint.layers):
        return None
    return checkpoint.kernel_offsets()


def _random_key(src: np.ndarray, dst: np.ndarray, seed: int, sample: int,
                kernel: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """splitmix64 of ``src << 32 | dst`` plus the stream's offset and, for a kernel weight, its
    ``((ky + 1) << 16 | (kx + 1))`` times the golden ratio (0 for Linear synapses: their keys do not change),
    computed a cache-sized chunk at a time (a dozen passes over 64-bit integers)."""
    offset = np.random.SeedSequence(int(seed), spawn_key=(int(sample),)).generate_state(1, np.uint64)[0]
    key = np.empty(len(src), dtype=np.uint64)
    for start in range(0, len(src), _CHUNK):
        part = slice(start, start + _CHUNK)
        x = key[part]
        x[:] = src[part]
        x <<= np.uint64(32)
        x |= dst[part].astype(np.uint64)
        x += offset                                   # wraps modulo 2**64, still one-to-one
        if kernel is not None:
            code = (kernel[0][part].astype(np.uint64) + np.uint64(1)) << np.uint64(16)
            code |= (kernel[1][part].astype(np.int64) + 1).astype(np.uint64)
            code *= np.uint64(0x9E3779B97F4A7C15)
            x += code
        for shift, multiplier in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            x ^= x >> np.uint64(shift)
            x *= np.uint64(multiplier)
        x ^= x >> np.uint64(31)
    return key


def edge_order(checkpoint: Checkpoint, order: str, seed: int = 0, sample: int = 0) -> np.ndarray:
    """Indices into ``checkpoint.edge_list()`` in the order the edges are kept: the first ``edges_kept`` of
    them (see :func:`kept_points`) are the network at that point of the curve. Ties are broken by global
    (src, dst), then (kernel weights of one channel pair) by (ky, kx)."""
    src, dst, _, _ = checkpoint.edge_list()
    kernel = () if _kernel_offsets(checkpoint) is None else checkpoint.kernel_offsets()[::-1]
    return _in_order(np.arange(len(src)), order_key(checkpoint, order, seed, sample), src, dst, kernel)


def synapse_ranks(checkpoint: Checkpoint, order: str, seed: int = 0, sample: int = 0) -> np.ndarray:
    """The position (0-based) of every synapse of ``checkpoint.edge_list()`` in :func:`edge_order`."""
    ordered = edge_order(checkpoint, order, seed, sample)
    rank = np.empty(len(ordered), dtype=np.int64)
    rank[ordered] = np.arange(len(ordered))
    return rank


def _in_order(chosen: np.ndarray, key: np.ndarray, src: np.ndarray, dst: np.ndarray, more=()) -> np.ndarray:
    """The edges ``chosen`` (all edges of key ≤ some cut) in the order: by key, ties by (src, dst), then by
    the arrays ``more`` (last one first). The same as ``np.lexsort((*more, dst, src, key))`` over ``chosen``,
    in about half the time: a plain (unstable) sort, then only the runs of equal keys are re-sorted."""
    ordered = chosen[np.argsort(key[chosen])]
    k = key[ordered]
    tie = k[1:] == k[:-1]
    if tie.any():  # re-sort only the runs of equal keys, which stay where they are
        member = np.zeros(len(k), dtype=bool)
        member[1:] |= tie
        member[:-1] |= tie
        where = np.flatnonzero(member)
        runs = ordered[where]
        ordered[where] = runs[np.lexsort((*(m[runs] for m in more), dst[runs], src[runs], key[runs]))]
    return ordered


# --- the curve of one ordering --------------------------------------------------------------------------

@dataclass(frozen=True)
class Merges:
    """The curve of one ordering as a step function: state m (0 = no edge) holds from the ``position[m]``-th
    edge (1-based; 0 for m = 0) until the next merge. ``s1``, ``s2``, ``sum_sq`` have one entry per state;
    ``clusters`` is the number of clusters in state 0 (the neurons, less the merges of permanent edges)."""

    neurons: int
    edges: int
    position: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    sum_sq: np.ndarray
    clusters: int | None = None

    def __post_init__(self):
        if self.clusters is None:
            object.__setattr__(self, "clusters", self.neurons)

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
            "components": (self.clusters - states).astype(np.float64),
            "mean_cluster_size": mean_cluster,
        }


def merges(neurons: int, src: np.ndarray, dst: np.ndarray, key: np.ndarray, first: int | None = None, *,
           permanent: tuple[np.ndarray, np.ndarray] | None = None, synapses: int | None = None) -> Merges:
    """The exact curve of the graph (``neurons``, undirected edges ``src``–``dst``) with edges added by
    ascending ``key`` (ties by (src, dst)).

    ``permanent`` edges (src, dst) are there from the start and never removed: their components are the
    clusters of state 0. With ``synapses``, edges come in groups that enter together (the unrolled edges of
    one kernel weight): ``key`` is each edge's group rank 0 … synapses − 1 and positions count groups.

    Only a prefix of the order is sorted. The first edge of every cluster that leaves it always merges, so
    the prefix starts as all edges up to the latest of those first edges (or the first ``first`` edges, when
    given); its spanning forest (minimum spanning tree on rank weights) gives the merges, and the prefix
    doubles until no later edge joins two of its components.
    """
    edges = len(key)
    cluster, sizes = _clusters(neurons, permanent)
    count = len(sizes)
    a, b = (src, dst) if cluster is None else (cluster[src], cluster[dst])
    crossing = None if cluster is None else a != b  # edges inside a permanent cluster never merge
    if first is None and edges:
        top = np.inf if key.dtype.kind == "f" else np.iinfo(key.dtype).max
        leaving = key if crossing is None else np.where(crossing, key, top)
        earliest = np.full(count, top, dtype=key.dtype)
        np.minimum.at(earliest, a, leaving)
        np.minimum.at(earliest, b, leaving)
        # the latest first edge of a cluster (were one's first key ``top``, the prefix would double below)
        reached = earliest[earliest < top]
        chosen = np.flatnonzero(key <= reached.max()) if len(reached) else np.arange(edges)
    else:
        chosen = _first(key, min(edges, first or 1))
    while True:
        if synapses is None:
            prefix = _in_order(chosen, key, src, dst)
        else:  # the edges of one group enter together: their order among themselves changes no state after it
            prefix = chosen[np.argsort(key[chosen], kind="stable")]
        rank = np.arange(1, len(prefix) + 1, dtype=np.float64)
        if crossing is not None:
            rank, prefix_live = rank[crossing[prefix]], prefix[crossing[prefix]]
        else:
            prefix_live = prefix
        forest = spanning.forest(count, a[prefix_live], b[prefix_live], rank)
        if len(prefix) == edges:
            break
        _, labels = connected_components(forest, directed=False)
        if np.array_equal(labels[a], labels[b]):
            break
        chosen = _first(key, min(edges, 2 * len(prefix)))
    step = np.argsort(forest.data)
    position = forest.data[step].astype(np.int64)
    if synapses is not None:  # the group's count, not the edge's place in the order
        position = key[prefix[position - 1]].astype(np.int64) + 1
    return _union_find(neurons, synapses if synapses is not None else edges, forest.row[step], forest.col[step],
                       position, sizes)


def _clusters(neurons: int, permanent) -> tuple[np.ndarray | None, np.ndarray]:
    """The cluster of each neuron under the permanent edges (None: every neuron alone) and the sizes."""
    if permanent is None or not len(permanent[0]):
        return None, np.ones(neurons, dtype=np.int64)
    src, dst = permanent
    links = sp.csr_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(neurons, neurons))
    _, cluster = connected_components(links, directed=False)
    return cluster, np.bincount(cluster)


def _first(key: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` smallest keys and of every key tied with the last of them (a partial sort)."""
    if count >= len(key):
        return np.arange(len(key))
    return np.flatnonzero(key <= np.partition(key, count - 1)[count - 1])


def _union_find(neurons: int, edges: int, u: np.ndarray, v: np.ndarray, position: np.ndarray,
                sizes: np.ndarray) -> Merges:
    """Merge the forest edges of the clusters of ``sizes`` in order (union by size), recording S1, S2 and Σs²
    after each merge.

    S2 comes from a count of clusters per size: after a merge it is the new cluster or the old S2 (when the
    largest is untouched), the old S1 (when a cluster of that size is left), or else the old S2 or less,
    found by stepping down from there; the steps down are paid for by the smaller sides of the merges,
    O(V log V) in all.
    """
    parent = list(range(len(sizes)))
    size = sizes.tolist()
    count = np.bincount(sizes, minlength=neurons + 1).tolist()
    ranked = np.sort(sizes)[::-1]
    s1 = int(ranked[0]) if len(ranked) else 0
    s2 = int(ranked[1]) if len(ranked) > 1 else 0
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
        elif new < s1:  # the largest is untouched: the second is the new cluster or the old second
            s2 = max(new, old2)
        elif count[old1]:  # the new cluster is the largest, the old largest is still there
            s2 = old1
        else:  # the old largest merged into the new one: the next size down from the old second
            while old2 and not count[old2]:
                old2 -= 1
            s2 = old2
        first.append(s1)
        second.append(s2)
        grow.append(2 * sa * sb)
    return Merges(
        neurons=neurons,
        edges=edges,
        position=np.concatenate([[0], position]).astype(np.int64),
        s1=np.array(first, dtype=np.float64),
        s2=np.array(second, dtype=np.float64),
        sum_sq=float((sizes.astype(np.float64) ** 2).sum()) + np.cumsum(np.array(grow, dtype=np.float64)),
        clusters=len(sizes),
    )


def magnitude_merges(checkpoint: Checkpoint, g: Graph, order: str) -> Merges:
    """The :class:`Merges` of a magnitude order (``descending`` or ``ascending``) on the channel graph ``g``
    of ``checkpoint``: the same as :func:`merges`, without sorting the synapses.

    A magnitude order's prefix that holds every cluster's first edge is a large part of the graph when the
    layers' weight scales differ (a deep layer's strongest weight comes after most of the first layer's),
    so instead: an edge that closes a cycle of earlier edges within its own weight layer closes one in the
    network, so only the edges of each layer's own spanning forest in that order can merge clusters (at
    most one per channel pair; permanent clusters contracted), and Kruskal on the union of those forests
    gives the merges. The layers' forests come from one :func:`netarchive.analysis.spanning.filter_kruskal`
    on the layers side by side, each on its own copy of the clusters and drawing its own batches (a few
    calls of scipy's spanning tree in all, instead of a few per layer: on a sparse network their fixed
    costs were most of the curve). Their positions in the whole order (ties by global (src, dst)) are
    counted by :func:`_positions`.
    """
    cluster, sizes = _clusters(g.neurons, (g.link_src, g.link_dst))
    count = len(sizes)
    a, b = (g.src, g.dst) if cluster is None else (cluster[g.src], cluster[g.dst])
    descending = order == "descending"
    bits = spanning.magnitude_bits(g.w, descending)
    first = np.cumsum([0] + [layer.edges for layer in checkpoint.layers])  # the layers' edges, in layer order
    # ties by each layer's (src, dst): the global order
    key = np.concatenate([spanning.order_key(layer, descending, bits[start:end])
                          for layer, start, end in zip(checkpoint.layers, first, first[1:])])
    copy = np.repeat(np.arange(len(checkpoint.layers), dtype=np.int64) * count, np.diff(first))  # each layer's own clusters
    runs = [(start, g.widths[layer.source] + g.widths[layer.target]) for layer, start in zip(checkpoint.layers, first)]
    candidates = np.flatnonzero(spanning.filter_kruskal(key, (a + copy, b + copy), count * len(checkpoint.layers), runs))
    candidates = candidates[np.lexsort((g.dst[candidates], g.src[candidates], bits[candidates]))]
    forest = spanning.forest(count, a[candidates], b[candidates], np.arange(1, len(candidates) + 1, dtype=np.float64))
    step = np.argsort(forest.data)
    merged = candidates[forest.data[step].astype(np.int64) - 1]
    return _union_find(g.neurons, g.edges, forest.row[step], forest.col[step],
                       _positions(bits, g.src, g.dst, merged), sizes)


def random_merges(g: Graph, key: np.ndarray) -> Merges | None:
    """The :class:`Merges` of the ``random`` order of key ``key`` (:func:`order_key`) on the channel graph
    ``g``, without sorting the synapses: the same as :func:`merges`, or None when a merging synapse shares
    its key with one that does not merge (a 64-bit collision; :func:`merges` then breaks the tie).

    On a sparse channel graph some channel's only synapse comes late in a random order, so the prefix
    :func:`merges` sorts is nearly every synapse. Instead, filter-Kruskal
    (:func:`netarchive.analysis.spanning.filter_kruskal`, linear selections) finds the minimum spanning
    forest under the keys, permanent clusters contracted; these are the merges (when no other synapse has
    a forest edge's key, every other one is the last on its cycle however ties break), in the order
    (key, src, dst), and :func:`_positions` counts where they come in the whole order.
    """
    cluster, sizes = _clusters(g.neurons, (g.link_src, g.link_dst))
    a, b = (g.src, g.dst) if cluster is None else (cluster[g.src], cluster[g.dst])
    merged = np.flatnonzero(spanning.filter_kruskal(key, (a, b), len(sizes)))
    merged = merged[np.lexsort((g.dst[merged], g.src[merged], key[merged]))]
    position = _positions(key, g.src, g.dst, merged, distinct=True)
    if position is None:
        return None
    return _union_find(g.neurons, g.edges, a[merged], b[merged], position, sizes)


def _positions(bits: np.ndarray, src: np.ndarray, dst: np.ndarray, chosen: np.ndarray,
               distinct: bool = False) -> np.ndarray | None:
    """The 1-based positions of the edges ``chosen`` in the order of every edge by (``bits``, src, dst),
    edges equal in all three counted from the first of them. Only the edges up to the last chosen one
    matter (the merges of a curve come early). Their ``bits`` go into about half as many histogram buckets
    as there are such edges: the edges of buckets below a chosen edge's and holding none are counted by a
    cumulative sum, those in the buckets holding chosen edges are sorted exactly. With ``distinct``, None
    when another edge has the ``bits`` of a chosen one."""
    if not len(chosen):
        return np.zeros(0, dtype=np.int64)
    top = bits[chosen].max()
    early_count = np.count_nonzero(bits <= top)
    if early_count > 0.9 * len(bits):
        # nearly every edge comes before the last chosen one (an ascending curve): no index of them; the
        # few later ones join the last chosen edge's bucket and are sorted after it, so they count for none
        early, early_bits = None, np.minimum(bits, top)
    else:
        early = np.flatnonzero(bits <= top)
        early_bits = bits[early]
    low = early_bits.min()
    shift = bits.dtype.type(max(0, int(np.ceil(np.log2(max(int(top - low), 1) / early_count))) + 1))
    bucket = ((early_bits - low) >> shift).astype(np.intp)
    counts = np.bincount(bucket)
    mine = ((bits[chosen] - low) >> shift).astype(np.intp)
    hit = np.zeros(len(counts), dtype=bool)
    hit[mine] = True
    outside_below = np.cumsum(np.where(hit, 0, counts))  # at a hit bucket: the edges of lower non-hit buckets
    inside = np.flatnonzero(hit[bucket]) if early is None else early[hit[bucket]]
    if distinct and np.count_nonzero(np.isin(bits[inside], bits[chosen])) != len(chosen):
        return None
    ordered = _in_order(inside, bits, src, dst)
    keys = [column[ordered] for column in (bits, src, dst)]
    starts = np.ones(len(ordered), dtype=bool)
    starts[1:] = np.any([k[1:] != k[:-1] for k in keys], axis=0)
    earlier = np.empty(len(inside), dtype=np.int64)  # per inside edge: those before the first equal to it
    earlier[np.searchsorted(inside, ordered)] = np.maximum.accumulate(np.where(starts, np.arange(len(ordered)), 0))
    return outside_below[mine] + earlier[np.searchsorted(inside, chosen)] + 1


def checkpoint_merges(checkpoint: Checkpoint, order: str, seed: int = 0, sample: int = 0,
                      unroll: bool | Graph = False) -> Merges:
    """The :class:`Merges` of one ordering of a checkpoint's synapses (see :func:`order_key`) on its channel
    graph, or on its unit graph with ``unroll`` (a :class:`Graph` of the checkpoint may be passed instead),
    the connections permanent."""
    g = unroll if isinstance(unroll, Graph) else graph(checkpoint, unroll)
    links = (g.link_src, g.link_dst)
    if g.synapse is None and order in MAGNITUDE_ORDERS:
        return magnitude_merges(checkpoint, g, order)
    if g.synapse is None:
        key = order_key(checkpoint, order, seed, sample)
        return random_merges(g, key) or merges(g.neurons, g.src, g.dst, key, permanent=links)
    rank = synapse_ranks(checkpoint, order, seed, sample)
    return merges(g.neurons, g.src, g.dst, rank[g.synapse], permanent=links, synapses=checkpoint.edges)


# --- curves ---------------------------------------------------------------------------------------------

def percolation(
    checkpoint: Checkpoint,
    order: str = "descending",
    points: int = 101,
    samples: int = RANDOM_ORDERS,
    seed: int = 0,
    canonical: bool = False,
    kept=None,
    unroll: bool = False,
) -> pd.DataFrame:
    """The percolation curve at ``points`` evenly spaced kept fractions (or at the fractions ``kept``) of the
    checkpoint's synapses, on its channel graph (``unroll``: its unit graph), connections always present.

    Rows: ``kept``, ``edges_kept`` (synapses), ``graph`` (channel or unrolled), ``connections`` (the
    permanent weightless edges), then :data:`QUANTITIES` (fractions of all neurons; ``mean_cluster_size`` =
    (Σs² − S1²)/(V − S1), 0 when no finite cluster is left). ``random`` averages ``samples`` orderings and
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
    g = graph(checkpoint, unroll)
    runs = [checkpoint_merges(checkpoint, order, seed, s, g) for s in range(samples if order == "random" else 1)]
    if canonical:
        values = [canonical_curve(m, fractions) for m in runs]
        head = {"p": fractions, "mean_edges": fractions * edges}
    else:
        values = [m.quantities(m.state(edges_kept)) for m in runs]
        head = {"kept": fractions, "edges_kept": edges_kept}
    stacked = {name: np.stack([v[name] for v in values]) for name in QUANTITIES}
    mean = {name: stacked[name].mean(axis=0) for name in QUANTITIES}
    if order != "random":  # one ordering: the number of components is a count, not a mean
        mean["components"] = mean["components"].round().astype(np.int64)
    columns = {"run": checkpoint.run, "level": checkpoint.level, "order": order}
    if order == "random":
        columns["samples"] = len(runs)
    columns |= {**head, "graph": g.kind, "connections": g.connections, **mean}
    if order == "random":
        columns |= {f"{name}_std": stacked[name].std(axis=0, ddof=1) if len(runs) > 1 else np.nan for name in QUANTITIES}
    return pd.DataFrame(columns)  # built whole: a column added at a time cost 10 % of a sparse network's curve


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

def thresholds(checkpoint: Checkpoint, samples: int = RANDOM_ORDERS, seed: int = 0, unroll: bool = False) -> pd.DataFrame:
    """One row of percolation thresholds, each a kept fraction of the edges, on the channel graph (with
    ``unroll`` the unit graph). The analytic ones count synapses only and take each edge of the graph as
    kept independently; the measured one removes synapses, the connections permanent.

    - ``p_c_molloy_reed``: ⟨k⟩/(⟨k²⟩ − ⟨k⟩) (Molloy & Reed 1995; Cohen et al., PRL 85, 4626, 2000);
    - ``p_c_branching``: 1/λ_max of the group matrix K_{g,h} = e_{gh}/√(n_g n_h) (e_{gh} synapses between
      groups g and h; tridiagonal for a chain, √(n_l n_{l+1}) when dense), the mean-field threshold of a
      layered network;
    - ``p_c_measured``: where the mean finite-cluster size, averaged over ``samples`` random orderings, peaks;
    - ``p_c_seed``: the seed's 1/(2N − 1) for a chain of Linear layers of equal hidden widths N (NaN
      otherwise), times dense/own edges.
    """
    check_samples(samples)
    g = graph(checkpoint, unroll)
    k1, k2 = degree_moments(g)
    edges = checkpoint.edges
    lam = float(np.linalg.eigvalsh(_group_matrix(checkpoint, g))[-1])
    hidden = checkpoint.widths[1:-1]
    chain = not checkpoint.connections and all(
        layer.conv is None and (layer.source, layer.target) == (l, l + 1) for l, layer in enumerate(checkpoint.layers))
    seed_dense = 1 / (2 * hidden[0] - 1) if chain and hidden and len(set(hidden)) == 1 else np.nan
    return pd.DataFrame([{
        "run": checkpoint.run,
        "level": checkpoint.level,
        "graph": g.kind,
        "p_c_molloy_reed": k1 / (k2 - k1) if k2 > k1 else np.nan,
        "p_c_branching": 1 / lam if lam > 0 else np.nan,
        "p_c_measured": measured_threshold(checkpoint, samples, seed, g) if edges else np.nan,
        "p_c_seed": seed_dense * checkpoint.dense_edges / edges if edges else np.nan,
    }])


def _group_matrix(checkpoint: Checkpoint, g: Graph) -> np.ndarray:
    """The symmetric matrix K_{g,h} = e_{gh}/√(n_g n_h) over neuron groups, e_{gh} the edges of the layers
    between g and h in ``g`` (the branching matrix B_{gh} = e_{gh}/n_g, symmetrised: same spectrum)."""
    widths = np.array(g.widths, dtype=np.float64)
    per_layer = np.bincount(g.layer, minlength=len(checkpoint.layers))
    counts = np.zeros((len(widths), len(widths)))
    for layer, edges in zip(checkpoint.layers, per_layer):
        counts[layer.source, layer.target] += edges
    coupling = counts / np.sqrt(np.outer(widths, widths))
    return coupling + coupling.T


def measured_threshold(checkpoint: Checkpoint, samples: int = RANDOM_ORDERS, seed: int = 0, unroll: bool | Graph = False) -> float:
    """Kept fraction n/E where the mean finite-cluster size averaged over random orderings peaks (exact: the
    averaged curve is evaluated at every merge of every ordering)."""
    g = unroll if isinstance(unroll, Graph) else graph(checkpoint, unroll)
    runs = [checkpoint_merges(checkpoint, "random", seed, s, g) for s in range(samples)]
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
