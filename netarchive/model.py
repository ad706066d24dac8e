"""The checkpoint in memory: a layered weighted graph held as per-layer edge arrays.

Loaders produce a :class:`Checkpoint`, stores write and read it, analyses consume it. Each layer keeps
only its surviving synapses (``src``, ``dst``, ``w``), never a dense matrix, so a 6 M-weight network
costs 12 bytes per surviving synapse. Edges are in no particular order: an analysis that needs a
deterministic order sorts by its own key (for example ``np.lexsort((dst, src, -abs(w)))``).

Neuron numbering: ``index`` counts within a layer; the *global* index of neuron ``index`` of layer
``l`` is ``offsets[l] + index`` (layer 0 = inputs), which is the numbering of :meth:`edge_list`.

Example::

    >>> import numpy as np
    >>> layer = Layer.from_dense("fc.weight", np.array([[1.0, 0.0], [0.5, -2.0]]))
    >>> ckpt = Checkpoint(run="r", level=0, layers=(layer,))
    >>> ckpt.widths, ckpt.edges, ckpt.sparsity
    ((2, 2), 3, 0.25)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from netarchive.errors import InputError


ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "identity")


@dataclass(frozen=True, eq=False)
class Layer:
    """One fully connected layer: synapse ``src`` (input neuron) -> ``dst`` (output neuron) of weight ``w``.

    ``name`` is the name of the weight tensor in the user's state_dict (e.g. ``fc1.weight``), kept so that
    masks computed later load back into the user's model by name.
    """

    name: str
    inputs: int
    outputs: int
    src: np.ndarray
    dst: np.ndarray
    w: np.ndarray
    bias: np.ndarray | None = None
    """One bias per output neuron, or None when the checkpoint had none (a forward pass then uses zeros)."""

    def __post_init__(self):
        src = np.ascontiguousarray(self.src, dtype=np.int32)
        dst = np.ascontiguousarray(self.dst, dtype=np.int32)
        w = np.ascontiguousarray(self.w, dtype=np.float32)
        if not (src.ndim == dst.ndim == w.ndim == 1 and len(src) == len(dst) == len(w)):
            raise InputError(f"layer {self.name}: src, dst and w must be 1-D arrays of one length")
        if len(src) and (src.min() < 0 or src.max() >= self.inputs or dst.min() < 0 or dst.max() >= self.outputs):
            raise InputError(f"layer {self.name}: a synapse refers to a neuron outside the {self.outputs}x{self.inputs} layer")
        if not np.isfinite(w).all():
            raise InputError(f"layer {self.name}: weights contain NaN or inf")
        object.__setattr__(self, "src", src)
        object.__setattr__(self, "dst", dst)
        object.__setattr__(self, "w", w)
        if self.bias is not None:
            bias = np.ascontiguousarray(self.bias, dtype=np.float32)
            if bias.shape != (self.outputs,):
                raise InputError(f"layer {self.name}: {bias.size} biases for {self.outputs} outputs")
            if not np.isfinite(bias).all():
                raise InputError(f"layer {self.name}: biases contain NaN or inf")
            object.__setattr__(self, "bias", bias)

    @classmethod
    def from_dense(cls, name: str, weight: np.ndarray, bias: np.ndarray | None = None) -> "Layer":
        """Build a layer from an ``[outputs, inputs]`` matrix (as ``nn.Linear.weight``); zeros are pruned."""
        weight = np.asarray(weight)
        if weight.ndim != 2:
            raise InputError(f"{name}: expected a 2-D weight matrix, got shape {tuple(weight.shape)}")
        if not np.isfinite(weight).all():
            raise InputError(f"{name}: weights contain NaN or inf")
        dst, src = np.nonzero(weight)
        return cls(name, int(weight.shape[1]), int(weight.shape[0]), src, dst, weight[dst, src], bias)

    @property
    def edges(self) -> int:
        return len(self.w)

    @property
    def dense_size(self) -> int:
        return self.inputs * self.outputs

    def matrix(self) -> sp.csr_matrix:
        """The layer as a sparse ``[outputs, inputs]`` matrix of weights (CSR), like ``nn.Linear.weight``."""
        return sp.csr_matrix((self.w, (self.dst, self.src)), shape=(self.outputs, self.inputs))

    def dense(self) -> np.ndarray:
        """The dense ``[outputs, inputs]`` weight matrix, zeros where pruned (for one layer at a time)."""
        out = np.zeros((self.outputs, self.inputs), dtype=np.float32)
        out[self.dst, self.src] = self.w
        return out

    def mask(self) -> np.ndarray:
        """The dense boolean ``[outputs, inputs]`` mask of surviving synapses."""
        out = np.zeros((self.outputs, self.inputs), dtype=bool)
        out[self.dst, self.src] = True
        return out


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A pruned feed-forward network at one level of one run.

    ``input_shape`` is ``(channels, height, width)`` when the inputs are pixels (flattened row-major,
    as ``torch.flatten`` does); ``metrics`` are numbers (accuracy, loss) and ``meta`` labels of the run;
    ``activation`` is the run's nonlinearity between hidden layers (one of :data:`ACTIVATIONS`);
    ``curves`` the training curves of the level, ``metric -> (iterations, values)`` (e.g. an OpenLTH
    ``logger``: ``test_accuracy`` at every evaluated iteration), iterations ascending.
    """

    run: str
    level: int
    layers: tuple[Layer, ...]
    input_shape: tuple[int, int, int] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    activation: str = "relu"
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "curves", {name: _curve(name, *points) for name, points in self.curves.items()})
        if self.activation not in ACTIVATIONS:
            raise InputError(f"unknown activation {self.activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        if not self.layers:
            raise InputError(f"checkpoint {self.run}/{self.level} has no layers")
        for a, b in zip(self.layers, self.layers[1:]):
            if a.outputs != b.inputs:
                raise InputError(
                    f"shapes do not chain: {a.name} has {a.outputs} outputs but {b.name} has {b.inputs} inputs"
                )
        if self.input_shape is not None:
            shape = tuple(int(s) for s in self.input_shape)
            if len(shape) != 3 or np.prod(shape) != self.layers[0].inputs:
                raise InputError(
                    f"input shape {','.join(map(str, shape))} has {int(np.prod(shape))} pixels "
                    f"but the first layer has {self.layers[0].inputs} inputs"
                )
            object.__setattr__(self, "input_shape", shape)

    @property
    def widths(self) -> tuple[int, ...]:
        """Neurons per layer, inputs first: ``(n_0, n_1, ..., n_L)``."""
        return (self.layers[0].inputs,) + tuple(layer.outputs for layer in self.layers)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    @property
    def offsets(self) -> np.ndarray:
        """Global index of the first neuron of each layer, plus the total at the end."""
        return np.concatenate([[0], np.cumsum(self.widths)]).astype(np.int64)

    @property
    def neurons(self) -> int:
        return int(sum(self.widths))

    @property
    def edges(self) -> int:
        return int(sum(layer.edges for layer in self.layers))

    @property
    def dense_edges(self) -> int:
        return int(sum(layer.dense_size for layer in self.layers))

    @property
    def sparsity(self) -> float:
        """1 − surviving synapses / weights of the dense layers."""
        return 1.0 - self.edges / self.dense_edges

    @cached_property
    def _edge_list(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        off = self.offsets
        src = np.concatenate([layer.src.astype(np.int64) + off[i] for i, layer in enumerate(self.layers)])
        dst = np.concatenate([layer.dst.astype(np.int64) + off[i + 1] for i, layer in enumerate(self.layers)])
        w = np.concatenate([layer.w for layer in self.layers])
        which = np.repeat(np.arange(len(self.layers), dtype=np.int32), [layer.edges for layer in self.layers])
        for array in (src, dst, w, which):
            array.flags.writeable = False
        return src, dst, w, which

    def edge_list(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All synapses as global arrays ``(src, dst, w, layer)``; computed once, read-only."""
        return self._edge_list

    def subnetwork(self, keep: np.ndarray) -> "Checkpoint":
        """The same network with only the synapses where ``keep`` (a boolean mask over :meth:`edge_list`) is
        true: what is left when the others are removed."""
        bounds = np.cumsum([0] + [layer.edges for layer in self.layers])
        layers = tuple(
            Layer(layer.name, layer.inputs, layer.outputs, layer.src[k], layer.dst[k], layer.w[k], layer.bias)
            for layer, k in ((layer, keep[bounds[i] : bounds[i + 1]]) for i, layer in enumerate(self.layers))
        )
        return Checkpoint(self.run, self.level, layers, self.input_shape, self.metrics, self.meta, self.activation)

    def adjacency(self) -> sp.csr_matrix:
        """The directed ``V x V`` weight matrix over global neuron indices (row = source)."""
        src, dst, w, _ = self.edge_list()
        n = self.neurons
        return sp.csr_matrix((w, (src, dst)), shape=(n, n))

    def neuron_layers(self) -> np.ndarray:
        """Layer of each neuron, in global order."""
        return np.repeat(np.arange(len(self.widths)), self.widths)

    def input_coordinates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(channel, y, x)`` of every input neuron, or None when the inputs are not pixels."""
        if self.input_shape is None:
            return None
        return np.unravel_index(np.arange(self.layers[0].inputs), self.input_shape)


def _curve(name: str, iterations, values) -> tuple[np.ndarray, np.ndarray]:
    """One training curve as ``(int64 iterations ascending, float64 values)``, checked."""
    iterations = np.asarray(iterations, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if iterations.ndim != 1 or iterations.shape != values.shape:
        raise InputError(f"curve {name!r}: iterations and values must be 1-D arrays of one length")
    if len(iterations) > 1 and not (np.diff(iterations) > 0).all():
        raise InputError(f"curve {name!r}: iterations must be strictly ascending")
    return iterations, values
