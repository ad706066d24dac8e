"""The graph a structural analysis reads: a checkpoint's channel graph, or with ``unroll`` its unit graph.

Both have the checkpoint's neuron groups (numbered in forward order, 0 = the inputs; the output group is
the group of the program's last value) and two kinds of edges:

- **synapses**, one per surviving weight. On the *channel graph* a convolution's neurons are its channels
  and every surviving kernel weight is one synapse from an input channel to an output channel, so a channel
  pair carries up to kh·kw of them (a multigraph); a Linear layer's synapses are its matrix entries. On the
  *unrolled graph* (:meth:`netarchive.model.Checkpoint.unrolled`) every (channel, y, x) of a feature map is
  a unit and a kernel weight is one edge per output position it reaches (Toeplitz structure).
- **connections**, the weightless edges of residual additions, concatenations and flattens. The data flows
  along them as along synapses, so components, the giant component, percolation curves and which inputs
  reach the outputs follow them; they have no weight to remove, so removal orders never remove them (they
  are *permanent*); degrees and strengths count synapses only.

A removal order removes synapses of the checkpoint: on the unrolled graph a kernel weight goes with all
its positions at once, as pruning removes it, so kept fractions mean the same on both graphs.

Example::

    >>> import numpy as np
    >>> from netarchive.model import Checkpoint, Layer
    >>> g = graph(Checkpoint("r", 0, (Layer.from_dense("fc", np.array([[1.0, 0.0], [0.5, -2.0]])),)))
    >>> g.kind, g.widths, g.edges, g.connections, g.output
    ('channel', (2, 2), 3, 0, 1)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netarchive.errors import InputError
from netarchive.model import UNROLL_MAX_EDGES, Checkpoint
from netarchive.model.numbering import Numbered

@dataclass(frozen=True, eq=False)
class Graph(Numbered):
    """Neurons ``widths`` per group; synapses ``src``, ``dst``, ``w``, ``layer`` (global neuron indices, the
    weight layer's forward index); ``synapse``, for each edge, the checkpoint synapse it belongs to (None on
    the channel graph, where edge i is synapse i); connections ``link_src`` -> ``link_dst``; ``output`` the
    output group."""

    kind: str
    widths: tuple[int, ...]
    src: np.ndarray
    dst: np.ndarray
    w: np.ndarray
    layer: np.ndarray
    synapse: np.ndarray | None
    link_src: np.ndarray
    link_dst: np.ndarray
    output: int

    @property
    def edges(self) -> int:
        return len(self.src)

    @property
    def connections(self) -> int:
        return len(self.link_src)

    def groups(self) -> np.ndarray:
        """The group of each neuron, in global order."""
        return np.repeat(np.arange(len(self.widths)), self.widths)

    def group_of(self, neurons: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.offsets, neurons, side="right") - 1


def graph(checkpoint: Checkpoint, unroll: bool = False, max_edges: int | None = None) -> Graph:
    """The channel graph of ``checkpoint``, or its unrolled unit graph (refused in one line beyond
    ``max_edges`` edges, by default :data:`UNROLL_MAX_EDGES`)."""
    output = checkpoint.program[-1].group
    if unroll:
        unrolled = checkpoint.unrolled(UNROLL_MAX_EDGES if max_edges is None else max_edges)
        link_src, link_dst, _ = unrolled.connection_edges()
        found = Graph("unrolled", unrolled.widths, *unrolled.edge_list(), unrolled.synapse, link_src, link_dst, output)
    else:
        link_src, link_dst, _ = checkpoint.connection_edges()
        found = Graph("channel", checkpoint.widths, *checkpoint.edge_list(), None, link_src, link_dst, output)
    _check_forward(checkpoint)
    return found


def _check_forward(checkpoint: Checkpoint) -> None:
    """Every edge must go from an earlier group to a later one (groups numbered in forward order), as the
    passes over the groups assume: each layer's and each connection's edges join one pair of groups."""
    pairs = [(layer.source, layer.target) for layer in checkpoint.layers]
    pairs += [(c.source, c.target) for c in checkpoint.connections]
    if any(source >= target for source, target in pairs):
        raise InputError("the network's groups are not numbered in forward order: an edge goes back")


def _all_edges(g: Graph, present: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Synapses (those where ``present`` is true, all by default) and connections, as one edge list."""
    src, dst = (g.src, g.dst) if present is None else (g.src[present], g.dst[present])
    return np.concatenate([src, g.link_src]), np.concatenate([dst, g.link_dst])


def _by_group(keys: np.ndarray, g: Graph) -> list[np.ndarray]:
    """Edge indices split by the group of ``keys`` (their source or target neurons), group by group."""
    group = g.group_of(keys)
    order = np.argsort(group, kind="stable")
    return np.split(order, np.searchsorted(group[order], np.arange(1, len(g.widths))))


def reached_from_inputs(g: Graph, present: np.ndarray | None = None) -> np.ndarray:
    """Which neurons a forward path from some input reaches (inputs included), along the synapses where
    ``present`` is true (all by default) and every connection: one pass over the groups in forward order."""
    src, dst = _all_edges(g, present)
    alive = np.zeros(g.neurons, dtype=bool)
    alive[: g.widths[0]] = True
    for into in _by_group(dst, g)[1:]:  # the sources of a group's edges are in earlier groups: final already
        alive[dst[into[alive[src[into]]]]] = True
    return alive


def reaching_outputs(g: Graph, present: np.ndarray | None = None) -> np.ndarray:
    """Which neurons have a forward path to some output neuron (outputs included)."""
    src, dst = _all_edges(g, present)
    alive = np.zeros(g.neurons, dtype=bool)
    alive[g.offsets[g.output] : g.offsets[g.output + 1]] = True
    for out_of in reversed(_by_group(src, g)):
        alive[src[out_of[alive[dst[out_of]]]]] = True
    return alive


def bottleneck_to_outputs(g: Graph, rank: np.ndarray) -> np.ndarray:
    """For every neuron, the smallest largest ``rank`` of a synapse along its paths to the outputs (−1 on
    the outputs and along connections alone, ``len(rank)`` when no path exists): a neuron reaches an output
    once the first n synapses of an order are kept iff this is < n. One backward pass over the groups."""
    edge_rank = rank if g.synapse is None else rank[g.synapse]
    src, dst = _all_edges(g, None)
    cost = np.concatenate([edge_rank, np.full(g.connections, -1, dtype=np.int64)])
    join = np.full(g.neurons, len(rank), dtype=np.int64)
    join[g.offsets[g.output] : g.offsets[g.output + 1]] = -1
    for out_of in reversed(_by_group(src, g)):
        np.minimum.at(join, src[out_of], np.maximum(cost[out_of], join[dst[out_of]]))
    return join
