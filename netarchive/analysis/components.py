"""Connected components of a checkpoint, and whether its inputs still reach its outputs.

Components are those of the undirected graph of surviving synapses; an isolated neuron is a component of
its own. Labels are ranked by size (0 = the giant component, ties by lowest neuron), so that
``MATCH (n:Neuron) WHERE n.component = 0`` selects the giant one after ``--write``. Connectivity of inputs
and outputs follows the direction of the synapses (a forward path), as the network computes.

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

from netarchive.model import Checkpoint


def component_labels(checkpoint: Checkpoint) -> np.ndarray:
    """Component of each neuron (global order), numbered by decreasing size, ties by lowest neuron index."""
    src, dst, _, _ = checkpoint.edge_list()
    n = checkpoint.neurons
    graph = sp.csr_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels, minlength=count)
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(count, dtype=np.int64)
    rank[np.lexsort((first, -sizes))] = np.arange(count)
    return rank[labels]


def reachable(checkpoint: Checkpoint, forward: bool = True) -> np.ndarray:
    """Which neurons of the last layer a forward path from some input reaches (``forward``), or which input
    neurons have a forward path to some output (``forward=False``): one pass over each layer's synapses."""
    layers = checkpoint.layers if forward else checkpoint.layers[::-1]
    alive = np.ones(layers[0].inputs if forward else layers[0].outputs, dtype=bool)
    for layer in layers:
        start, end = (layer.src, layer.dst) if forward else (layer.dst, layer.src)
        nxt = np.zeros(layer.outputs if forward else layer.inputs, dtype=bool)
        nxt[end[alive[start]]] = True
        alive = nxt
    return alive


def components(checkpoint: Checkpoint) -> pd.DataFrame:
    """One row: ``neurons``, ``edges``, ``components``, ``giant_fraction`` (largest / all neurons),
    ``isolated``, ``inputs_connected`` (fraction of inputs with a path to some output) and
    ``outputs_connected`` (fraction of outputs reached from some input)."""
    labels = component_labels(checkpoint)
    sizes = np.bincount(labels)
    return pd.DataFrame([{
        "run": checkpoint.run,
        "level": checkpoint.level,
        "neurons": checkpoint.neurons,
        "edges": checkpoint.edges,
        "components": len(sizes),
        "giant_fraction": sizes[0] / checkpoint.neurons,
        "isolated": int((sizes == 1).sum()),
        "inputs_connected": float(reachable(checkpoint, forward=False).mean()),
        "outputs_connected": float(reachable(checkpoint, forward=True).mean()),
    }])
