"""The network model every loader produces, every store keeps and every analysis reads.

- :mod:`netarchive.model.layer`: weight layers (``Layer``, with ``Conv`` geometry for convolutions);
- :mod:`netarchive.model.graph`: neuron groups, batch norms, weightless connections and the ``Checkpoint``;
- :mod:`netarchive.model.program`: the ops of the forward pass (``Op``);
- :mod:`netarchive.model.unrolled`: the (channel, y, x) unit graph of a convolutional network, on demand.
"""
from netarchive.model.graph import (
    ARCHITECTURE_FORMAT,
    ASSUMED_SEQUENTIAL,
    SEQUENTIAL,
    UNROLL_MAX_EDGES,
    BatchNorm,
    Checkpoint,
    Connection,
    Group,
    sample_shape,
)
from netarchive.model.layer import Conv, Layer
from netarchive.model.program import ACTIVATIONS, FUNCTIONS, Op, chain_program
from netarchive.model.unrolled import Unrolled, kernel_positions, unrolled_layer

__all__ = [
    "ACTIVATIONS", "ARCHITECTURE_FORMAT", "ASSUMED_SEQUENTIAL", "FUNCTIONS", "SEQUENTIAL", "UNROLL_MAX_EDGES",
    "BatchNorm", "Checkpoint", "Connection", "Conv", "Group", "Layer", "Op", "Unrolled", "chain_program", "kernel_positions",
    "sample_shape", "unrolled_layer",
]
