"""Connected components of a checkpoint, and whether its inputs still reach its outputs.

Components are those of the undirected graph of surviving synapses and of the weightless connections
(residual additions, concatenations, flattens), which carry the data as much as synapses do; an isolated
neuron is a component of its own. The graph is the channel graph, or with ``unroll`` the unit graph of
(channel, y, x) (:mod:`netarchive.analysis.graphs`). Labels are ranked by size (0 = the giant component,
ties by lowest neuron), so that ``MATCH (n:Neuron) WHERE n.component = 0`` selects the giant one after
``--write``. Connectivity of inputs and outputs follows the direction of the data flow (a forward path
through synapses and connections), as the network computes.

Example::

    >>> import numpy as np
    >>> from netarchive.model import Checkpoint, Layer
    >>> ckpt = Checkpoint("r", 0, (Layer.from_dense("fc", np.array([[1.0, 0.0], [0.0, 0.0]])),))
    >>> component_labels(ckpt).tolist()
    [0, 1, 0, 2]
    >>> components(ckpt)[["components", "giant_fraction", "isolated", "inputs_connected"]].values.tolist()
    [[3.0, 0.5, 2.0, 0.5]]
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from netarchive.analysis.graphs import Graph, graph, reached_from_inputs, reaching_outputs
from netarchive.model import Checkpoint


def graph_labels(g: Graph) -> np.ndarray:
    """Component of each neuron of ``g``, numbered by decreasing size, ties by lowest neuron index."""
    src = np.concatenate([g.src, g.link_src])
    dst = np.concatenate([g.dst, g.link_dst])
    n = g.neurons
    count, labels = connected_components(
        sp.csr_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n)), directed=False)
    sizes = np.bincount(labels, minlength=count)
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(count, dtype=np.int64)
    rank[np.lexsort((first, -sizes))] = np.arange(count)
    return rank[labels]


def component_labels(checkpoint: Checkpoint, unroll: bool = False) -> np.ndarray:
    """Component of each neuron (global order; units of the unrolled graph with ``unroll``)."""
    return graph_labels(graph(checkpoint, unroll))


def reachable(checkpoint: Checkpoint, forward: bool = True, unroll: bool = False) -> np.ndarray:
    """Which output neurons a forward path from some input reaches (``forward``), or which input neurons have
    a forward path to some output (``forward=False``), through synapses and connections."""
    g = graph(checkpoint, unroll)
    if forward:
        return reached_from_inputs(g)[g.offsets[g.output] : g.offsets[g.output + 1]]
    return reaching_outputs(g)[: g.widths[0]]


def components(checkpoint: Checkpoint, unroll: bool = False) -> pd.DataFrame:
    """One row: ``graph`` (channel or unrolled), ``neurons``, ``edges`` (synapses), ``connections`` (weightless
    edges, part of connectivity), ``components``, ``giant_fraction`` (largest / all neurons), ``isolated``,
    ``inputs_connected`` (fraction of inputs with a path to some output) and ``outputs_connected``
    (fraction of outputs reached from some input)."""
    g = graph(checkpoint, unroll)
    sizes = np.bincount(graph_labels(g))
    outputs = slice(g.offsets[g.output], g.offsets[g.output + 1])
    return pd.DataFrame([{
        "run": checkpoint.run,
        "level": checkpoint.level,
        "graph": g.kind,
        "neurons": g.neurons,
        "edges": g.edges,
        "connections": g.connections,
        "components": len(sizes),
        "giant_fraction": sizes[0] / g.neurons,
        "isolated": int((sizes == 1).sum()),
        "inputs_connected": float(reaching_outputs(g)[: g.widths[0]].mean()),
        "outputs_connected": float(reached_from_inputs(g)[outputs].mean()),
    }])
