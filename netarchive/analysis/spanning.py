"""Maximum spanning forests per layer, the topologically critical compression ratio (TCCR), forest/top-k
overlap and topological pruning masks (Balwani & Krzyston, arXiv 2206.06563, seed 002).

Each layer is the bipartite graph between its ``m`` input and ``n`` output neurons whose edges are the
surviving synapses weighted by ``|w|``. Its *maximum spanning forest* (MSF) holds the edges that carry the
layer's zeroth-order topology: the points of its neural persistence diagram (Rieck et al., ICLR 2019) and
the weights T-IMP keeps first.

Ties are broken deterministically: edges are totally ordered by ``(-|w|, src, dst)`` (largest magnitude
first, then input index, then output index), so every forest, top-k set and mask is the unique one of
that order. The order is a single ``uint64`` key per edge (the bits of the float32 ``|w|``, which sort
like the values, above ``src * n + dst``), which needs ``m * n < 2**32`` per layer.

Algorithm: filter-Kruskal (Osipov, Sanders & Singler, ALENEX 2009) on that key. The ``2V`` best edges are
selected with ``argpartition``, sorted, and their forest found by
``scipy.sparse.csgraph.minimum_spanning_tree`` on rank weights (Kruskal); every remaining edge whose ends
are now in one component is dropped in one vectorised pass, and the survivors go round again with a
doubled batch. On a trained dense layer one or two rounds leave nothing, so the cost is one
``argpartition`` and a few passes over the edges instead of a full sort.

Example::

    >>> import numpy as np
    >>> from netarchive.model import Checkpoint, Layer
    >>> layer = Layer.from_dense("fc.weight", np.array([[1.0, 0.5], [0.25, -0.75]]))
    >>> sorted(layer.w[forest_mask(layer)].tolist())
    [-0.75, 0.5, 1.0]
    >>> float(tccr(Checkpoint("r", 0, (layer,)))["tccr"].iloc[0])  # 2 x 2 dense: 4 / 3
    1.3333333333333333
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from netarchive.errors import InputError
from netarchive.model import Checkpoint, Layer

METHODS = ("magnitude", "topological")
SCOPES = ("layer", "global")
_INF_BITS = np.uint32(0x7F800000)


def order_key(layer: Layer) -> np.ndarray:
    """One ``uint64`` per edge, ascending in the order ``(-|w|, src, dst)`` (all keys distinct)."""
    if layer.dense_size >= 2**32:
        raise InputError(f"layer {layer.name} has {layer.dense_size:,} weights: at most 2**32 are supported")
    high = (_INF_BITS - np.abs(layer.w).view(np.uint32)).astype(np.uint64) << np.uint64(32)
    return high | (layer.src.astype(np.uint64) * np.uint64(layer.outputs) + layer.dst.astype(np.uint64))


def forest_mask(layer: Layer) -> np.ndarray:
    """Which edges of ``layer`` form its maximum spanning forest under ``|w|`` (boolean, one per edge).

    The forest has ``m + n - c`` edges for ``c`` components (isolated neurons count as components).
    """
    key = order_key(layer)
    ends = (layer.src.astype(np.int64), layer.dst.astype(np.int64) + layer.inputs)
    return _filter_kruskal(key, ends, layer.inputs + layer.outputs)


def _filter_kruskal(key: np.ndarray, ends: tuple[np.ndarray, np.ndarray], vertices: int) -> np.ndarray:
    chosen = np.zeros(len(key), dtype=bool)
    label = np.arange(vertices)
    remaining = np.arange(len(key))
    batch = 2 * vertices
    while remaining.size:
        if remaining.size > batch:
            part = np.argpartition(key[remaining], batch - 1)
            take, remaining = remaining[part[:batch]], remaining[part[batch:]]
        else:
            take, remaining = remaining, remaining[:0]
        take = take[np.argsort(key[take])]
        a, b = label[ends[0][take]], label[ends[1][take]]
        # Kruskal on the contracted batch: keep the best edge between two components, rank weights 1, 2, ...
        low, high = np.minimum(a, b), np.maximum(a, b)
        _, first = np.unique(low * vertices + high, return_index=True)
        first = first[low[first] != high[first]]
        if first.size:
            ranks = sp.csr_matrix((first + 1.0, (low[first], high[first])), shape=(vertices, vertices))
            tree = minimum_spanning_tree(ranks).tocoo()
            picked = tree.data.astype(np.int64) - 1
            chosen[take[picked]] = True
            merged = sp.csr_matrix((np.ones(len(picked)), (low[picked], high[picked])), shape=(vertices, vertices))
            label = connected_components(merged, directed=False)[1][label]
        remaining = remaining[label[ends[0][remaining]] != label[ends[1][remaining]]]
        batch *= 2
    return chosen


def spanning_forests(checkpoint: Checkpoint) -> list[np.ndarray]:
    """The forest mask of every layer (see :func:`forest_mask`), in layer order."""
    return [forest_mask(layer) for layer in checkpoint.layers]


def forest_synapses(checkpoint: Checkpoint, forests: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The forest edges of every layer as arrays ``(layer index, src, dst)``, as ``Store.set_synapse_flag`` takes them."""
    which = np.concatenate([np.full(int(f.sum()), l) for l, f in enumerate(forests)])
    src = np.concatenate([layer.src[f] for layer, f in zip(checkpoint.layers, forests)])
    dst = np.concatenate([layer.dst[f] for layer, f in zip(checkpoint.layers, forests)])
    return which, src, dst


def forest_edges(checkpoint: Checkpoint, forests: list[np.ndarray] | None = None) -> pd.DataFrame:
    """The maximum spanning forest of every layer as a tidy table: run, level, layer, src, dst, w.

    ``layer`` is the layer name; src/dst index the neurons within their layers.
    """
    forests = forests if forests is not None else spanning_forests(checkpoint)
    frames = [
        pd.DataFrame({"layer": layer.name, "src": layer.src[f], "dst": layer.dst[f], "w": layer.w[f]})
        for layer, f in zip(checkpoint.layers, forests)
    ]
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "level", checkpoint.level)
    table.insert(0, "run", checkpoint.run)
    return table


def _network_row(frame: pd.DataFrame, checkpoint: Checkpoint, values: dict) -> pd.DataFrame:
    """Append the ``scope = network`` row (``layer`` empty) to a per-layer table; integer columns stay
    integers (nullable where the network row has no value)."""
    integers = [c for c in frame.columns if pd.api.types.is_integer_dtype(frame[c]) and c != "level"]
    row = pd.DataFrame([{"run": checkpoint.run, "level": checkpoint.level, "scope": "network", "layer": "", **values}])
    frame = pd.concat([frame, row], ignore_index=True)
    return frame.astype({column: "Int64" for column in integers})


def _layer_frame(checkpoint: Checkpoint, columns: dict) -> pd.DataFrame:
    head = {
        "run": checkpoint.run,
        "level": checkpoint.level,
        "scope": "layer",
        "layer": list(checkpoint.layer_names),
    }
    return pd.DataFrame({**head, **columns})


def tccr(checkpoint: Checkpoint) -> pd.DataFrame:
    """Topologically critical compression ratio of each dense layer and of the network (seed 002, Def. 3.1).

    A dense ``m x n`` layer needs at least its spanning tree, ``m + n - 1`` weights, to stay connected, so
    it cannot be compressed beyond ``m n / (m + n - 1)`` without losing zeroth-order topology; the network
    ratio is total weights over the sum of the tree sizes. ``compression`` is the checkpoint's own
    (dense weights / surviving synapses); ``past_critical`` means the layer is necessarily disconnected.

    Example: the MNIST FCN 784-100-100-100-100-100-10 gives 88.78822, 50.25126 (x4), 9.17431, network 66.77852.
    """
    m = np.array([layer.inputs for layer in checkpoint.layers], dtype=np.int64)
    n = np.array([layer.outputs for layer in checkpoint.layers], dtype=np.int64)
    edges = np.array([layer.edges for layer in checkpoint.layers], dtype=np.int64)
    tree = m + n - 1
    frame = _layer_frame(
        checkpoint,
        {
            "inputs": m,
            "outputs": n,
            "dense_weights": m * n,
            "tree_edges": tree,
            "edges": edges,
            "tccr": m * n / tree,
            "critical_sparsity": 1 - tree / (m * n),
            "compression": _ratio(m * n, edges),
            "sparsity": 1 - edges / (m * n),
            "past_critical": edges < tree,
        },
    )
    dense, trees, kept = int((m * n).sum()), int(tree.sum()), int(edges.sum())
    return _network_row(
        frame,
        checkpoint,
        {
            "dense_weights": dense,
            "tree_edges": trees,
            "edges": kept,
            "tccr": dense / trees,
            "critical_sparsity": 1 - trees / dense,
            "compression": float(_ratio(dense, kept)),
            "sparsity": 1 - kept / dense,
            "past_critical": kept < trees,
        },
    )


def _ratio(numerator, denominator):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(numerator, denominator, dtype=np.float64)


def _top_k(key: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the ``k`` edges first in key order."""
    top = np.zeros(len(key), dtype=bool)
    if k >= len(key):
        top[:] = True
    elif k > 0:
        top[np.argpartition(key, k - 1)[:k]] = True
    return top


def overlap(checkpoint: Checkpoint, forests: list[np.ndarray] | None = None) -> pd.DataFrame:
    """How many of the top-k synapses by |w| (k = forest size) lie in the layer's maximum spanning forest.

    Magnitude pruning down to the critical ratio keeps exactly the top-k; ``overlap_fraction`` says how much
    of the zeroth-order topology it would keep (seed 002, Sec. 3.3). ``random_overlap`` is the exact
    expectation for k synapses chosen uniformly at random (hypergeometric mean k·|F|/E) and
    ``random_overlap_std`` its standard deviation, so the distance from chance is visible.
    """
    forests = forests if forests is not None else spanning_forests(checkpoint)
    rows = []
    for layer, forest in zip(checkpoint.layers, forests):
        k, edges = int(forest.sum()), layer.edges
        hits = int((_top_k(order_key(layer), k) & forest).sum())
        mean, std = _hypergeometric(edges, k, k)
        rows.append((layer.edges, k, hits, mean, std))
    edges, k, hits, mean, std = (np.array(column) for column in zip(*rows))
    frame = _layer_frame(
        checkpoint,
        {
            "edges": edges,
            "msf_edges": k,
            "overlap": hits,
            "overlap_fraction": _ratio(hits, k),
            "random_overlap": mean,
            "random_overlap_std": std,
            "random_overlap_fraction": _ratio(mean, k),
        },
    )
    total_k = int(k.sum())
    return _network_row(
        frame,
        checkpoint,
        {
            "edges": int(edges.sum()),
            "msf_edges": total_k,
            "overlap": int(hits.sum()),
            "overlap_fraction": float(_ratio(hits.sum(), total_k)),
            "random_overlap": float(mean.sum()),
            "random_overlap_std": float(np.sqrt((std**2).sum())),
            "random_overlap_fraction": float(_ratio(mean.sum(), total_k)),
        },
    )


def _hypergeometric(population: int, successes: int, draws: int) -> tuple[float, float]:
    """Mean and standard deviation of the successes among ``draws`` taken without replacement."""
    if population == 0:
        return 0.0, 0.0
    p = successes / population
    var = draws * p * (1 - p) * (population - draws) / (population - 1) if population > 1 else 0.0
    return draws * p, float(np.sqrt(var))


def forest_survival(reference: Checkpoint, checkpoint: Checkpoint, reference_forests: list[np.ndarray] | None = None) -> pd.DataFrame:
    """How much of the forest of ``reference`` (an earlier level) survives in ``checkpoint`` (a later one).

    Did iterative magnitude pruning keep the topology? ``survived`` counts the reference forest's synapses
    still present, ``still_in_forest`` those that are also in the later level's forest, and
    ``random_survived_fraction`` is what pruning the same number of the reference's synapses at random
    would keep on average (later edges / reference edges).
    """
    _check_same_shapes(reference, checkpoint)
    reference_forests = reference_forests if reference_forests is not None else spanning_forests(reference)
    columns = {name: [] for name in ("reference_edges", "edges", "msf_edges", "survived", "still_in_forest")}
    for old, new, forest in zip(reference.layers, checkpoint.layers, reference_forests):
        wanted = _pair_code(old)[forest]
        present = np.isin(wanted, _pair_code(new))
        in_forest = np.isin(wanted, _pair_code(new)[forest_mask(new)])
        for name, value in zip(columns, (old.edges, new.edges, forest.sum(), present.sum(), in_forest.sum())):
            columns[name].append(int(value))
    values = {name: np.array(column, dtype=np.int64) for name, column in columns.items()}
    frame = _layer_frame(checkpoint, {"from_level": reference.level, **values})
    totals = {name: int(column.sum()) for name, column in values.items()}
    frame = _network_row(frame, checkpoint, {"from_level": reference.level, **totals})
    _add_survival_fractions(frame)
    return frame


def _add_survival_fractions(frame: pd.DataFrame) -> None:
    k = frame["msf_edges"].astype(float)
    frame["survived_fraction"] = frame["survived"].astype(float) / k
    frame["still_in_forest_fraction"] = frame["still_in_forest"].astype(float) / k
    frame["random_survived_fraction"] = frame["edges"].astype(float) / frame["reference_edges"].astype(float)


def _pair_code(layer: Layer) -> np.ndarray:
    return layer.src.astype(np.int64) * layer.outputs + layer.dst.astype(np.int64)


def _check_same_shapes(reference: Checkpoint, checkpoint: Checkpoint) -> None:
    if reference.widths != checkpoint.widths:
        raise InputError(
            f"levels {reference.level} and {checkpoint.level} of run {checkpoint.run!r} have different layer "
            f"widths ({reference.widths} and {checkpoint.widths}): their synapses cannot be matched"
        )


def pruning_masks(
    checkpoint: Checkpoint, sparsity: float, method: str = "topological", scope: str = "layer"
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Keep-masks (``[outputs, inputs]`` booleans, keyed by weight name) at the requested ``sparsity``.

    ``magnitude`` keeps the largest |w|; ``topological`` keeps each layer's maximum spanning forest first
    and fills the rest of the budget by magnitude (T-IMP, seed 002 Sec. 3.4), so no layer loses a
    connection between its components. ``scope`` ``layer`` prunes every layer to ``sparsity``, ``global``
    ranks all weights together. Budgets are ``round((1 - sparsity) * dense weights)``; ties follow the
    order ``(-|w|, src, dst)`` (and layer order across layers). Returns the masks and a summary per layer.
    Refuses a sparsity the checkpoint cannot reach (fewer synapses survive) and, for ``topological``,
    one past the critical ratio (the budget cannot hold the forests). The summary says how much of each
    forest was kept (``msf_kept``) and the components before and after (``components``, ``components_kept``).
    """
    if method not in METHODS or scope not in SCOPES:
        raise InputError(f"method must be one of {', '.join(METHODS)} and scope one of {', '.join(SCOPES)}")
    if not 0 <= sparsity < 1:
        raise InputError(f"sparsity must be in [0, 1), got {sparsity}")
    layers = checkpoint.layers
    forests = spanning_forests(checkpoint)
    first = forests if method == "topological" else [np.zeros(layer.edges, bool) for layer in layers]
    if scope == "layer":
        keeps = [_layer_keep(checkpoint, layer, forest, sparsity) for layer, forest in zip(layers, first)]
    else:
        keeps = _global_keep(checkpoint, first, sparsity)
    masks, rows = {}, []
    for layer, keep, forest in zip(layers, keeps, forests):
        mask = np.zeros((layer.outputs, layer.inputs), dtype=bool)
        mask[layer.dst[keep], layer.src[keep]] = True
        masks[layer.name] = mask
        vertices = layer.inputs + layer.outputs
        rows.append((layer.dense_size, keep.sum(), forest.sum(), (keep & forest).sum(), vertices - forest.sum(), _components(layer, keep)))
    names = ("dense_weights", "kept", "msf_edges", "msf_kept", "components", "components_kept")
    values = {name: np.array(column, dtype=np.int64) for name, column in zip(names, zip(*rows))}
    totals = {name: int(values[name].sum()) for name in names}
    for table in (values, totals):
        table["sparsity"] = 1 - table["kept"] / table["dense_weights"]
    frame = _layer_frame(checkpoint, {"method": method, "ranking": scope, **values})
    summary = _network_row(frame, checkpoint, {"method": method, "ranking": scope, **totals})
    order = [*summary.columns[:8], "sparsity", *names[2:]]
    return masks, summary[order]


def _components(layer: Layer, keep: np.ndarray) -> int:
    """Connected components of the layer's neurons joined by the kept synapses."""
    vertices = layer.inputs + layer.outputs
    graph = sp.csr_matrix(
        (np.ones(int(keep.sum())), (layer.src[keep], layer.inputs + layer.dst[keep].astype(np.int64))), shape=(vertices, vertices)
    )
    return int(connected_components(graph, directed=False)[0])


def _budget(dense: int, sparsity: float) -> int:
    return int(round((1 - sparsity) * dense))


def _layer_keep(checkpoint: Checkpoint, layer: Layer, forest: np.ndarray, sparsity: float) -> np.ndarray:
    k = _budget(layer.dense_size, sparsity)
    if k > layer.edges:
        raise InputError(
            f"layer {layer.name} of {checkpoint.run}/{checkpoint.level} already has sparsity "
            f"{1 - layer.edges / layer.dense_size:.6g}: with --scope layer ask for --sparsity of at least that"
        )
    f = int(forest.sum())
    if k < f:
        raise InputError(
            f"sparsity {sparsity} is past the topologically critical ratio of layer {layer.name}: {k} weights "
            f"cannot hold its {f}-edge spanning forest; the most topological pruning allows here is sparsity "
            f"{1 - f / layer.dense_size:.6g}"
        )
    key = order_key(layer)
    key[forest] = 0  # the forest first, then by magnitude
    return _top_k(key, k)


def _global_keep(checkpoint: Checkpoint, forests: list[np.ndarray], sparsity: float) -> list[np.ndarray]:
    k = _budget(checkpoint.dense_edges, sparsity)
    if k > checkpoint.edges:
        raise InputError(
            f"{checkpoint.run}/{checkpoint.level} already has sparsity {checkpoint.sparsity:.6g}: "
            "ask for --sparsity of at least that"
        )
    f = int(sum(forest.sum() for forest in forests))
    if k < f:
        raise InputError(
            f"sparsity {sparsity} is past the topologically critical ratio of the network: {k} weights cannot "
            f"hold the {f} edges of the layers' spanning forests; the most topological pruning allows here is "
            f"sparsity {1 - f / checkpoint.dense_edges:.6g}"
        )
    magnitude = np.concatenate([np.abs(layer.w) for layer in checkpoint.layers])
    in_forest = np.concatenate(forests)
    which = np.repeat(np.arange(len(checkpoint.layers)), [layer.edges for layer in checkpoint.layers])
    src = np.concatenate([layer.src for layer in checkpoint.layers])
    dst = np.concatenate([layer.dst for layer in checkpoint.layers])
    order = np.lexsort((dst, src, which, -magnitude, ~in_forest))
    keep = np.zeros(len(order), dtype=bool)
    keep[order[:k]] = True
    return np.split(keep, np.cumsum([layer.edges for layer in checkpoint.layers])[:-1])
