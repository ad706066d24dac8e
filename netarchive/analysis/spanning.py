"""Maximum spanning forests per weight layer, the topologically critical compression ratio (TCCR),
forest/top-k overlap and topological pruning masks (Balwani & Krzyston, arXiv 2206.06563, seed 002).

Each weight layer is a bipartite graph whose edges are its surviving synapses weighted by ``|w|``:

- a Linear layer: between its ``m`` input and ``n`` output neurons;
- a convolution, by default the **channel graph**: between its input and output channels, one edge per
  surviving kernel weight, so a channel pair carries up to ``kh·kw`` parallel edges and its forest edge is
  the pair's largest ``|w|`` (grouped convolutions join only the channels of a group);
- a convolution **unrolled** (``unroll=True``): between the ``(channel, y, x)`` units it reads and those it
  writes, one edge per kernel weight and output position (:func:`netarchive.model.unrolled_layer`); a
  kernel weight then carries as many forest edges as positions where it merges two components.

Its *maximum spanning forest* (MSF) holds the edges that carry the layer's zeroth-order topology: the
points of its neural persistence diagram (Rieck et al., ICLR 2019) and the weights T-IMP keeps first.

Ties are broken deterministically: synapses are totally ordered by ``(-|w|, src, dst, ky, kx)`` (largest
magnitude first, then input index, output index and kernel offset), so every forest, top-k set and mask
is the unique one of that order. The order is a single ``uint64`` key per synapse (the bits of the float32
``|w|``, which sort like the values, above the synapse's place in the ``src × dst × ky × kx`` grid), which
needs ``m·n·kh·kw < 2**32`` per layer.

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

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from netarchive.errors import InputError
from netarchive.model import UNROLL_MAX_EDGES, Checkpoint, Layer, kernel_positions, unrolled_layer

METHODS = ("magnitude", "topological")
SCOPES = ("layer", "global")
CONVENTIONS = ("geometry", "seed")
"""TCCR conventions: the real unrolled geometry of every layer (default), or seed 002's tables."""
_INF_BITS = np.uint32(0x7F800000)


# -- order and forests ----------------------------------------------------------------------------
def synapse_code(layer: Layer) -> np.ndarray:
    """One ``uint32`` per synapse, ascending in ``(src, dst, ky, kx)``: its place in the layer's grid of
    channel (neuron) pairs and kernel offsets, the same for the same synapse at every level of a run."""
    kh, kw = layer.conv.kernel if layer.conv is not None else (1, 1)
    if layer.inputs * layer.outputs * kh * kw >= 2**32:
        raise InputError(f"layer {layer.name} has {layer.inputs} x {layer.outputs} neurons and {kh}x{kw} kernel "
                         "offsets: at most 2**32 synapse places are supported")
    code = layer.src.astype(np.uint32)  # in place: every partial value is at most the final one, below 2**32
    code *= np.uint32(layer.outputs)
    code += layer.dst.view(np.uint32)
    if layer.conv is not None:
        code *= np.uint32(kh)
        code += layer.ky.view(np.uint16)
        code *= np.uint32(kw)
        code += layer.kx.view(np.uint16)
    return code


def magnitude_bits(w: np.ndarray, descending: bool = True) -> np.ndarray:
    """One ``uint32`` per weight, ascending in ``-|w|`` (or with ``descending=False`` in ``|w|``): the bits
    of the float32 ``|w|``, which sort like the values, taken from infinity's when descending."""
    magnitude = np.abs(w).astype(np.float32, copy=False).view(np.uint32)
    return _INF_BITS - magnitude if descending else magnitude


def order_key(layer: Layer, descending: bool = True, bits: np.ndarray | None = None) -> np.ndarray:
    """One ``uint64`` per synapse, ascending in the order ``(-|w|, src, dst, ky, kx)`` (all keys distinct;
    ``descending=False``: in ``(|w|, src, dst, ky, kx)``); ``bits``: the layer's :func:`magnitude_bits`
    when they are at hand."""
    key = (magnitude_bits(layer.w, descending) if bits is None else bits).astype(np.uint64)
    key <<= np.uint64(32)
    key |= synapse_code(layer)
    return key


def forest_mask(layer: Layer) -> np.ndarray:
    """Which synapses of ``layer`` form its maximum spanning forest under ``|w|`` (boolean, one per synapse),
    on the layer's neurons, or channels for a convolution (a channel pair's forest edge is its largest |w|).

    The forest has ``m + n - c`` edges for ``c`` components (isolated neurons count as components).
    """
    return filter_kruskal(order_key(layer), (layer.src, layer.dst + np.int32(layer.inputs)), layer.inputs + layer.outputs)


def unrolled_forest(layer: Layer, max_edges: int = UNROLL_MAX_EDGES) -> np.ndarray:
    """How many edges of the maximum spanning forest of the *unrolled* layer each synapse carries (int64).

    The unrolled layer joins the ``(channel, y, x)`` units a convolution reads to those it writes, one edge
    per kernel weight and output position, each of weight ``|w|`` (:func:`netarchive.model.unrolled_layer`);
    the counts sum to its forest size ``V - c``. A Linear layer is its own unrolled layer (counts 0 or 1).
    Refused (InputError) beyond ``max_edges`` edges.
    """
    if layer.conv is None:
        return forest_mask(layer).astype(np.int64)
    inputs, outputs, edges = graph_size(layer, unroll=True)
    if edges > max_edges:
        raise InputError(f"layer {layer.name}: its unrolled graph would have {edges:,} edges, more than the bound "
                         f"of {max_edges:,}: use its channel graph (without --unroll)")
    src, dst, synapse = unrolled_layer(layer)
    rank = np.empty(layer.edges, dtype=np.uint64)
    rank[np.argsort(order_key(layer))] = np.arange(layer.edges, dtype=np.uint64)
    area = int(np.prod(layer.conv.out_spatial))
    key = rank[synapse] * np.uint64(area) + (dst % area).astype(np.uint64)  # the kernel weight's rank, then position
    chosen = filter_kruskal(key, (src, dst + inputs), inputs + outputs)
    return np.bincount(synapse[chosen], minlength=layer.edges).astype(np.int64)


def graph_size(layer: Layer, unroll: bool = False) -> tuple[int, int, int]:
    """``(inputs, outputs, edges)`` of the graph a layer is analysed as: its neurons (channels) and synapses,
    or with ``unroll`` a convolution's units and its edges at every output position (counted, not built)."""
    if not unroll or layer.conv is None:
        return layer.inputs, layer.outputs, layer.edges
    kw = layer.conv.kernel[1]
    per_offset = np.bincount(layer.ky.astype(np.int64) * kw + layer.kx, minlength=layer.conv.kernel[0] * kw)
    edges = sum(int(n) * len(kernel_positions(layer.conv, o // kw, o % kw)[0]) for o, n in enumerate(per_offset) if n)
    in_area, out_area = (int(np.prod(size)) for size in (layer.conv.in_spatial, layer.conv.out_spatial))
    return layer.inputs * in_area, layer.outputs * out_area, edges


def forest(count: int, a: np.ndarray, b: np.ndarray, rank: np.ndarray) -> sp.coo_matrix:
    """The minimum spanning forest of the edges a–b (vertices ``0 … count − 1``) weighted by their distinct
    ranks. Parallel edges (kernel weights of one channel pair, edges between two contracted components)
    stay separate entries of the CSR matrix, built here without summing duplicates, so that Kruskal takes
    the earliest of them."""
    by_row = np.argsort(a, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(a, minlength=count))])
    return minimum_spanning_tree(sp.csr_matrix((rank[by_row], b[by_row], indptr), shape=(count, count))).tocoo()


def filter_kruskal(key: np.ndarray, ends: tuple[np.ndarray, np.ndarray], vertices: int,
                   runs: Sequence[tuple[int, int]] | None = None) -> np.ndarray:
    """Which edges ``ends[0][i]``–``ends[1][i]`` (vertices ``0 … vertices − 1``) form the minimum spanning
    forest under the distinct keys ``key`` (boolean per edge; the module docstring has the algorithm).

    ``runs``: (first edge, bound on its forest's edges) of consecutive runs of edges on disjoint sets of
    vertices (a network's weight layers, each on its own copy of the vertices), which then draw their
    batches each from its own edges, so that one spanning tree call per round serves them all. Keys need
    only be distinct within a run."""
    runs = [(0, vertices)] if runs is None else list(runs)
    bounds = np.array([first for first, _ in runs] + [len(key)])
    batch = np.array([2 * bound for _, bound in runs], dtype=np.int64)
    chosen = np.zeros(len(key), dtype=bool)
    label = np.arange(vertices, dtype=np.int32)
    remaining = None  # every edge: the first round reads the arrays themselves, without an index array
    while remaining is None or remaining.size:
        cut = bounds if remaining is None else np.searchsorted(remaining, bounds)
        parts, whole = [], True
        for r, size in enumerate(batch):
            lo, hi = cut[r], cut[r + 1]
            keys = key[lo:hi] if remaining is None else key[remaining[lo:hi]]
            take = np.argpartition(keys, size - 1)[:size] if len(keys) > size else np.arange(len(keys))
            whole &= len(keys) <= size
            parts.append(lo + take if remaining is None else remaining[lo:hi][take])
        take = np.concatenate(parts)
        take = take[np.argsort(key[take])]
        a, b = label[ends[0][take]], label[ends[1][take]]
        # Kruskal on the contracted batch, rank weights 1, 2, ... (of parallel edges it takes the first)
        live = np.flatnonzero(a != b)
        if live.size:
            tree = forest(vertices, a[live], b[live], live + 1.0)
            chosen[take[tree.data.astype(np.int64) - 1]] = True
            if whole:  # the batch held every remaining edge: the forest is complete
                break
            label = connected_components(tree, directed=False)[1][label]
        # every edge of the batch now lies inside one component, so this drops it too
        if remaining is None:
            remaining = np.flatnonzero(label[ends[0]] != label[ends[1]])
        else:
            remaining = remaining[label[ends[0][remaining]] != label[ends[1][remaining]]]
        batch *= 2
    return chosen


def spanning_forests(checkpoint: Checkpoint, unroll: bool = False, max_edges: int = UNROLL_MAX_EDGES) -> list[np.ndarray]:
    """The forest of every weight layer, in layer order: the boolean :func:`forest_mask`, or with ``unroll``
    the per-synapse counts of :func:`unrolled_forest`. Either is "forest edges per synapse"."""
    return [layer_forest(layer, unroll, max_edges) for layer in checkpoint.layers]


def layer_forest(layer: Layer, unroll: bool = False, max_edges: int = UNROLL_MAX_EDGES) -> np.ndarray:
    """One layer's forest edges per synapse: :func:`forest_mask`, or with ``unroll`` :func:`unrolled_forest`."""
    return unrolled_forest(layer, max_edges) if unroll else forest_mask(layer)


def forest_synapses(checkpoint: Checkpoint, forests: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """The synapses that carry forest edges, as arrays ``(layer index, src, dst, ky, kx)`` (``ky = kx = -1``
    for Linear layers): what ``--write`` marks ``in_msf``, a kernel weight identified by its offset."""
    kept = [np.asarray(f) > 0 for f in forests]
    ky, kx = checkpoint.kernel_offsets()
    every = np.concatenate(kept)
    which = np.repeat(np.arange(len(kept)), [int(k.sum()) for k in kept])
    src = np.concatenate([layer.src[k] for layer, k in zip(checkpoint.layers, kept)])
    dst = np.concatenate([layer.dst[k] for layer, k in zip(checkpoint.layers, kept)])
    return which, src, dst, ky[every], kx[every]


def forest_edges(checkpoint: Checkpoint, forests: list[np.ndarray] | None = None) -> pd.DataFrame:
    """The maximum spanning forest of every weight layer as a tidy table: run, level, layer (forward index),
    layer_name (tensor name), src, dst (indices within their groups), ky, kx (-1 for Linear layers), w and, for
    unrolled forests, ``forest_edges`` (how many of the forest's edges the kernel weight carries)."""
    forests = forests if forests is not None else spanning_forests(checkpoint)
    which, src, dst, ky, kx = forest_synapses(checkpoint, forests)
    kept = [np.asarray(f) > 0 for f in forests]
    table = pd.DataFrame({
        "run": checkpoint.run, "level": checkpoint.level, "layer": which,
        "layer_name": np.array(checkpoint.layer_names, dtype=object)[which], "src": src, "dst": dst, "ky": ky, "kx": kx,
        "w": np.concatenate([layer.w[k] for layer, k in zip(checkpoint.layers, kept)]),
    })
    if any(np.asarray(f).dtype != bool for f in forests):
        table["forest_edges"] = np.concatenate([np.asarray(f)[k] for f, k in zip(forests, kept)])
    return table


# -- tables ---------------------------------------------------------------------------------------
def _network_row(frame: pd.DataFrame, checkpoint: Checkpoint, values: dict) -> pd.DataFrame:
    """Append the ``scope = network`` row (``layer`` empty, ``layer_name`` and ``kind`` blank) to a per-layer
    table; integer columns stay integers (nullable where the network row has no value)."""
    integers = [c for c in frame.columns if pd.api.types.is_integer_dtype(frame[c]) and c != "level"]
    head = {"run": checkpoint.run, "level": checkpoint.level, "scope": "network", "layer": pd.NA, "layer_name": "", "kind": ""}
    frame = pd.concat([frame, pd.DataFrame([{**head, **values}])], ignore_index=True)
    return frame.astype({column: "Int64" for column in integers})


def _layer_frame(checkpoint: Checkpoint, columns: dict) -> pd.DataFrame:
    """One row per weight layer, identified by its forward index (``layer``) and tensor name (``layer_name``),
    with its kind."""
    head = {
        "run": checkpoint.run,
        "level": checkpoint.level,
        "scope": "layer",
        "layer": np.arange(len(checkpoint.layers)),
        "layer_name": list(checkpoint.layer_names),
        "kind": [layer.kind for layer in checkpoint.layers],
    }
    return pd.DataFrame({**head, **columns})


# -- critical compression -------------------------------------------------------------------------
TCCR_CONVENTIONS = {
    "geometry": "TCCR = edges / spanning-forest size of each layer's dense graph; convolutions unrolled over "
                "their real channels, stride, padding, dilation and groups",
    "seed": "TCCR as seed 002's tables: one k×k Toeplitz graph per convolution at its output size, "
            "1×1 projection shortcuts left out",
}
"""One line per TCCR convention, the title of its table."""


def tccr(checkpoint: Checkpoint, convention: str = "geometry") -> pd.DataFrame:
    """Topologically critical compression ratio of each weight layer and of the network (seed 002, Def. 3.1).

    A layer whose graph has ``E`` edges on ``V`` vertices in ``c`` components needs at least a spanning
    forest, ``V - c`` edges, to keep its zeroth-order topology: ``tccr = E / (V - c)``; the network's is
    ``ΣE / Σ(V - c)``. A dense ``m × n`` Linear layer gives ``m·n / (m + n - 1)`` in both conventions.
    For a convolution:

    - ``geometry`` (default): the dense unrolled layer, all channels, stride, padding, dilation and groups:
      ``V`` = input units + output units (padding has none), ``E`` = one edge per kernel weight and output
      position it reaches, ``c`` computed exactly from the spatial pattern of the kernel;
    - ``seed``: seed 002's tables: one 2-D Toeplitz graph per convolution whatever its channels,
      ``E = kh·kw·H_out·W_out`` and ``V - c = (H_out + 2p)(W_out + 2p) + H_out·W_out - 1`` at the layer's
      output size; 1×1 projection shortcuts are left out of the network (``counted`` false).

    ``compression`` is the checkpoint's own (dense weights / surviving synapses); ``past_critical`` means
    it is compressed beyond the critical ratio (for a Linear layer: necessarily disconnected).

    Example: the MNIST FCN 784-100-100-100-100-100-10 gives 88.78822, 50.25126 (x4), 9.17431, network 66.77852.
    """
    if convention not in CONVENTIONS:
        raise InputError(f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
    left_out = _projection_shortcuts(checkpoint) if convention == "seed" else set()
    graph = _seed_graph if convention == "seed" else _dense_graph
    inputs, outputs, components, dense = (
        np.array(column, dtype=np.int64) for column in zip(*(graph(layer) for layer in checkpoint.layers))
    )
    tree = inputs + outputs - components
    weights = np.array([layer.dense_size for layer in checkpoint.layers], dtype=np.int64)
    edges = np.array([layer.edges for layer in checkpoint.layers], dtype=np.int64)
    counted = np.array([l not in left_out for l in range(len(checkpoint.layers))])
    frame = _layer_frame(checkpoint, {
        "convention": convention, "counted": counted, "inputs": inputs, "outputs": outputs, "components": components,
        "dense_edges": dense, "tree_edges": tree, **_critical_columns(dense, tree, weights, edges),
    })
    sums = [int(column[counted].sum()) for column in (dense, tree, weights, edges)]
    network = {key: value[0].item() for key, value in _critical_columns(*(np.array([n]) for n in sums)).items()}
    row = {"convention": convention, "counted": True, "dense_edges": sums[0], "tree_edges": sums[1], **network}
    frame = _network_row(frame, checkpoint, row).astype({"past_critical": "boolean"})
    frame.loc[np.flatnonzero(~counted), ["inputs", "outputs", "components", "dense_edges", "tree_edges", "tccr",
                                         "critical_sparsity", "past_critical"]] = pd.NA  # not a graph of the seed's
    frame.attrs["convention"] = TCCR_CONVENTIONS[convention]
    return frame


def _critical_columns(dense, tree, weights, edges) -> dict:
    ratio = dense / tree
    compression = _ratio(weights, edges)
    return {
        "tccr": ratio,
        "critical_sparsity": 1 - tree / dense,
        "dense_weights": weights,
        "edges": edges,
        "compression": compression,
        "sparsity": 1 - edges / weights,
        "past_critical": compression > ratio,
    }


def _dense_graph(layer: Layer) -> tuple[int, int, int, int]:
    """(input vertices, output vertices, components, edges) of the dense layer's graph, unrolled for a
    convolution. A dense kernel joins every input channel of a group to every output channel of it at each
    spatial pair (input position, output position) that some offset joins, so each component of that
    spatial pattern with an edge is one component per group, and a position no offset reaches leaves every
    channel's unit there alone."""
    if layer.conv is None:
        return layer.inputs, layer.outputs, 1, layer.inputs * layer.outputs
    conv = layer.conv
    p_in, p_out = (int(np.prod(size)) for size in (conv.in_spatial, conv.out_spatial))
    pairs = [kernel_positions(conv, ky, kx) for ky in range(conv.kernel[0]) for kx in range(conv.kernel[1])]
    q_in, q_out = (np.concatenate(column) for column in zip(*pairs))
    pattern = sp.csr_matrix((np.ones(len(q_in)), (q_in, p_in + q_out)), shape=(p_in + p_out, p_in + p_out))
    spatial = connected_components(pattern, directed=False)[0]
    alone_in = p_in - len(np.unique(q_in))
    alone_out = p_out - len(np.unique(q_out))
    components = conv.groups * (spatial - alone_in - alone_out) + alone_in * layer.inputs + alone_out * layer.outputs
    edges = layer.outputs * (layer.inputs // conv.groups) * len(q_in)
    return layer.inputs * p_in, layer.outputs * p_out, components, edges


def _seed_graph(layer: Layer) -> tuple[int, int, int, int]:
    """Seed 002's graph of a layer: a Linear layer's own; for a convolution one Toeplitz graph of its kernel
    over the padded output-size input and the output, ``E = kh·kw·H_out·W_out`` (channels and stride ignored)."""
    if layer.conv is None:
        return _dense_graph(layer)
    (kh, kw), (h, w), (ph, pw) = layer.conv.kernel, layer.conv.out_spatial, layer.conv.padding
    return (h + 2 * ph) * (w + 2 * pw), h * w, 1, kh * kw * h * w


def _projection_shortcuts(checkpoint: Checkpoint) -> set[int]:
    """The weight layers that are 1×1 projection shortcuts: a 1×1 convolution whose value reaches a residual
    addition through batch norms alone, while another input of that addition depends on what it reads."""
    program = checkpoint.program
    ancestors = []  # bit q of ancestors[p]: op p depends on the value of op q (or is it)
    for position, op in enumerate(program):
        bits = 1 << position
        for i in op.inputs:
            bits |= ancestors[i]
        ancestors.append(bits)
    found = set()
    for op in program:
        for branch in op.inputs if op.kind == "add" else ():
            producer = branch
            while program[producer].kind == "batchnorm":
                producer = program[producer].inputs[0]
            layer = program[producer]
            conv = checkpoint.layers[layer.index].conv if layer.kind == "layer" else None
            if conv is None or conv.kernel != (1, 1):
                continue
            read = 1 << layer.inputs[0]
            if any(ancestors[other] & read for other in op.inputs if other != branch):
                found.add(layer.index)
    return found


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
    """How many of the top-k synapses by |w| (k = forest size) lie in the layer's maximum spanning forest
    (on the channel graph of a convolution: kernel weights, ties in the order ``(-|w|, src, dst, ky, kx)``).

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

    Did iterative magnitude pruning keep the topology? A synapse is the same at both levels when its
    (layer, src, dst, ky, kx) are. ``survived`` counts the reference forest's synapses still present, ``still_in_forest`` those that are also in the later level's forest, and
    ``random_survived_fraction`` is what pruning the same number of the reference's synapses at random
    would keep on average (later edges / reference edges).
    """
    _check_same_shapes(reference, checkpoint)
    reference_forests = reference_forests if reference_forests is not None else spanning_forests(reference)
    columns = {name: [] for name in ("reference_edges", "edges", "msf_edges", "survived", "still_in_forest")}
    for old, new, forest in zip(reference.layers, checkpoint.layers, reference_forests):
        wanted = synapse_code(old)[forest]
        present = np.isin(wanted, synapse_code(new))
        in_forest = np.isin(wanted, synapse_code(new)[forest_mask(new)])
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


def _check_same_shapes(reference: Checkpoint, checkpoint: Checkpoint) -> None:
    shapes = [[layer.weight_shape for layer in each.layers] for each in (reference, checkpoint)]
    if reference.widths != checkpoint.widths or shapes[0] != shapes[1]:
        raise InputError(
            f"levels {reference.level} and {checkpoint.level} of run {checkpoint.run!r} have different layer "
            f"widths or weight shapes ({reference.widths} and {checkpoint.widths}): their synapses cannot be matched"
        )


def pruning_masks(
    checkpoint: Checkpoint, sparsity: float, method: str = "topological", scope: str = "layer"
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Keep-masks at the requested ``sparsity``, keyed by weight name and shaped like each weight tensor
    (``[outputs, inputs]``, ``[C_out, C_in / groups, kh, kw]``: what ``torch.nn.utils.prune.custom_from_mask``
    takes).

    ``magnitude`` keeps the largest |w|; ``topological`` keeps each layer's maximum spanning forest first
    and fills the rest of the budget by magnitude (T-IMP, seed 002 Sec. 3.4), so no layer loses a
    connection between its components (forests of the channel graph for convolutions). ``scope`` ``layer`` prunes every layer to ``sparsity``, ``global``
    ranks all weights together. Budgets are ``round((1 - sparsity) * dense weights)``; ties follow the
    order ``(-|w|, src, dst, ky, kx)`` (and layer order across layers). Returns the masks and a summary per layer.
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
        masks[layer.name] = layer.subset(keep).mask()
        vertices = layer.inputs + layer.outputs
        rows.append((layer.dense_size, keep.sum(), forest.sum(), (keep & forest).sum(), vertices - forest.sum(), _components(layer, keep)))
    names = ("dense_weights", "kept", "msf_edges", "msf_kept", "components", "components_kept")
    values = {name: np.array(column, dtype=np.int64) for name, column in zip(names, zip(*rows))}
    totals = {name: int(values[name].sum()) for name in names}
    for table in (values, totals):
        table["sparsity"] = 1 - table["kept"] / table["dense_weights"]
    frame = _layer_frame(checkpoint, {"method": method, "ranking": scope, **values})
    summary = _network_row(frame, checkpoint, {"method": method, "ranking": scope, **totals})
    order = [*summary.columns[: summary.columns.get_loc("kept") + 1], "sparsity", *names[2:]]
    return masks, summary[order]


def _components(layer: Layer, keep: np.ndarray) -> int:
    """Connected components of the layer's neurons (channels) joined by the kept synapses."""
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
    ky, kx = checkpoint.kernel_offsets()
    order = np.lexsort((kx, ky, dst, src, which, -magnitude, ~in_forest))
    keep = np.zeros(len(order), dtype=bool)
    keep[order[:k]] = True
    return np.split(keep, np.cumsum([layer.edges for layer in checkpoint.layers])[:-1])
