"""The checkpoint in memory: the network's real graph, held as per-layer synapse arrays.

A network is **neuron groups** (the inputs, the units of a Linear layer, the channels of a convolution, the
result of a residual addition, a concatenation or a flatten), **weight layers** between groups (their
surviving synapses, see :mod:`netarchive.model.layer`), **connections without weights** (add, concat,
flatten; derived from the program) and the **program** its forward pass executes
(:mod:`netarchive.model.program`), with the BatchNorm statistics it needs. A plain MLP is one case: groups
0..L, layer l from group l to l + 1, built from its layers alone as before.

Loaders produce a :class:`Checkpoint`, stores write and read it, analyses consume it. Edges are in no
particular order: an analysis that needs a deterministic order sorts by its own key (for example
``np.lexsort((dst, src, -abs(w)))``).

Neuron numbering: ``index`` counts within a group; the *global* index of neuron ``index`` of group ``g``
is ``offsets[g] + index`` (group 0 = inputs), which is the numbering of :meth:`Checkpoint.edge_list`.

Example::

    >>> import numpy as np
    >>> layer = Layer.from_dense("fc.weight", np.array([[1.0, 0.0], [0.5, -2.0]]))
    >>> ckpt = Checkpoint(run="r", level=0, layers=(layer,))
    >>> ckpt.widths, ckpt.edges, ckpt.sparsity, ckpt.is_sequential
    ((2, 2), 3, 0.25, True)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from netarchive.errors import InputError
from netarchive.model.layer import Conv, Layer, _pair
from netarchive.model.numbering import Numbered
from netarchive.model.program import ACTIVATIONS, Op, chain_program, value_shapes

SEQUENTIAL = "sequential"
"""``architecture_source`` of a chain built in Python from its layers."""
ASSUMED_SEQUENTIAL = "assumed sequential"
"""``architecture_source`` of a chain read from a state_dict alone: the order of its tensors was taken as the
architecture (ingest with ``--model`` to trace the real one)."""
ARCHITECTURE_FORMAT = 1
UNROLL_MAX_EDGES = 20_000_000
"""Default bound on the edges of :meth:`Checkpoint.unrolled` (about 0.6 GB of arrays)."""


def sample_shape(shape: Sequence[int] | None) -> tuple[int, int, int] | None:
    """A sample's shape as ``(C, H, W)``: ``(C, L)`` of 1-D inputs becomes ``(C, 1, L)``."""
    if shape is None:
        return None
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        shape = (shape[0], 1, shape[1])
    if len(shape) != 3 or min(shape) < 1:
        raise InputError(f"input shape {','.join(map(str, shape))} must be C,H,W (or C,L for 1-D inputs)")
    return shape


@dataclass(frozen=True)
class Group:
    """A set of neurons that one value of the network holds.

    ``size`` neurons: units, or for a feature map (``spatial`` = its (H, W)) channels. ``coordinates`` is
    the (C, H, W) that the units unravel from, row-major, when they are pixels (inputs given an input shape)
    or a flattened feature map.
    """

    name: str
    size: int
    spatial: tuple[int, int] | None = None
    coordinates: tuple[int, int, int] | None = None

    def __post_init__(self):
        object.__setattr__(self, "size", int(self.size))
        if self.spatial is not None:
            object.__setattr__(self, "spatial", _pair(self.spatial, "spatial"))
        if self.coordinates is not None:
            coordinates = sample_shape(self.coordinates)
            if self.spatial is not None or int(np.prod(coordinates)) != self.size:
                raise InputError(f"group {self.name}: coordinates {coordinates} do not fit {self.size} units")
            object.__setattr__(self, "coordinates", coordinates)
        if self.size < 1 or (self.spatial is not None and min(self.spatial) < 1):
            raise InputError(f"group {self.name} is empty")

    @property
    def is_feature_map(self) -> bool:
        return self.spatial is not None

    def to_dict(self) -> dict:
        return {"name": self.name, "size": self.size,
                "spatial": list(self.spatial) if self.spatial else None,
                "coordinates": list(self.coordinates) if self.coordinates else None}


@dataclass(frozen=True)
class Connection:
    """Edges without weights from group ``source`` to group ``target``, one per neuron of ``source``:

    - ``add`` (a residual addition): neuron i -> i;
    - ``concat``: neuron i -> ``offset`` + i (``offset`` = where this input starts in the output);
    - ``flatten``: channel c -> the units c·H·W … (c + 1)·H·W − 1, whose coordinates are (c, y, x).
    An add or concat of k values has k connections.
    """

    kind: str
    source: int
    target: int
    offset: int = 0


@dataclass(frozen=True, eq=False)
class BatchNorm:
    """The eval-mode batch norm of the neurons of group ``group`` (per channel of a feature map):
    ``(v - running_mean) / sqrt(running_var + eps) * weight + bias``; ``weight``/``bias`` None when the
    module has no affine parameters. ``name`` is the module's name in the state_dict (``bn1``)."""

    name: str
    group: int
    running_mean: np.ndarray
    running_var: np.ndarray
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    eps: float = 1e-5

    def __post_init__(self):
        size = np.asarray(self.running_mean).size
        for name in ("running_mean", "running_var", "weight", "bias"):
            values = getattr(self, name)
            if values is None:
                continue
            values = np.ascontiguousarray(values, dtype=np.float32)
            if values.shape != (size,) or not np.isfinite(values).all():
                raise InputError(f"batch norm {self.name}: {name} must be {size} finite numbers")
            object.__setattr__(self, name, values)
        if (self.running_var < 0).any() or not self.eps >= 0:
            raise InputError(f"batch norm {self.name}: negative variance or eps")
        object.__setattr__(self, "eps", float(self.eps))

    @property
    def size(self) -> int:
        return len(self.running_mean)

    def arrays(self) -> dict[str, np.ndarray | None]:
        return {name: getattr(self, name) for name in ("running_mean", "running_var", "weight", "bias")}


@dataclass(frozen=True, eq=False)
class Checkpoint(Numbered):
    """A pruned feed-forward network at one level of one run.

    ``input_shape`` is ``(channels, height, width)`` of a sample when the inputs are pixels or feature maps;
    ``metrics`` are numbers (accuracy, loss) and ``meta`` labels of the run; ``activation`` is the
    nonlinearity between the hidden layers of a plain chain (one of :data:`ACTIVATIONS`; a traced program
    carries its own activations); ``curves`` the training curves of the level, ``metric -> (iterations,
    values)`` (e.g. an OpenLTH ``logger``: ``test_accuracy`` at every evaluated iteration), iterations ascending.

    Built from ``layers`` alone it is the chain they form (``groups`` and ``program`` are filled in).
    Otherwise give ``groups`` (group 0 = inputs), the ``program``, the ``batchnorms`` it applies, and each
    layer's ``source``/``target`` (taken from the program when None). ``architecture_source`` says where
    the structure came from: ``sequential`` (built in Python), ``assumed sequential`` (a state_dict read as
    a chain), ``traced from …``.
    """

    run: str
    level: int
    layers: tuple[Layer, ...]
    input_shape: tuple[int, int, int] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    activation: str = "relu"
    _: KW_ONLY
    groups: tuple[Group, ...] | None = None
    batchnorms: tuple[BatchNorm, ...] = ()
    program: tuple[Op, ...] | None = None
    architecture_source: str = SEQUENTIAL
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "curves", {name: _curve(name, *points) for name, points in self.curves.items()})
        object.__setattr__(self, "batchnorms", tuple(self.batchnorms))
        if self.activation not in ACTIVATIONS:
            raise InputError(f"unknown activation {self.activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        if not self.layers:
            raise InputError(f"checkpoint {self.run}/{self.level} has no layers")
        if self.groups is None:
            self._fill_chain()
        else:
            object.__setattr__(self, "groups", tuple(self.groups))
            self._check_input_shape()
        if self.program is None:
            raise InputError(f"checkpoint {self.run}/{self.level} has groups but no program")
        object.__setattr__(self, "program", tuple(self.program))
        self._place_layers()
        shapes = value_shapes(self.program, self.groups, self.layers, self.batchnorms)
        normalised = [norm.group for norm in self.batchnorms]
        if len(set(normalised)) < len(normalised):
            raise InputError("two batch norms apply to the neurons of one group: not supported")
        object.__setattr__(self, "_shapes", shapes)

    def _fill_chain(self) -> None:
        """Groups, chain positions and program of a plain chain of Linear layers."""
        for a, b in zip(self.layers, self.layers[1:]):
            if a.outputs != b.inputs:
                raise InputError(
                    f"shapes do not chain: {a.name} has {a.outputs} outputs but {b.name} has {b.inputs} inputs"
                )
        layers = []
        for l, layer in enumerate(self.layers):
            if layer.conv is not None or (layer.source, layer.target) not in ((None, None), (l, l + 1)):
                raise InputError(f"layer {layer.name} is not a Linear layer of a chain: give the checkpoint's groups and program")
            layers.append(layer if layer.source is not None else replace(layer, source=l, target=l + 1))
        object.__setattr__(self, "layers", tuple(layers))
        shape = sample_shape(self.input_shape)
        if shape is not None and np.prod(shape) != self.layers[0].inputs:
            raise InputError(
                f"input shape {','.join(map(str, shape))} has {int(np.prod(shape))} pixels "
                f"but the first layer has {self.layers[0].inputs} inputs"
            )
        object.__setattr__(self, "input_shape", shape)
        groups = [Group("input", self.layers[0].inputs, coordinates=shape)]
        groups += [Group(_group_name(layer.name, l), layer.outputs) for l, layer in enumerate(self.layers)]
        object.__setattr__(self, "groups", tuple(groups))
        if self.program is None:
            object.__setattr__(self, "program", chain_program(len(self.layers), self.activation))

    def _place_layers(self) -> None:
        """Give a layer without ``source``/``target`` the groups its op in the program reads and writes."""
        layers = list(self.layers)
        for op in self.program:
            if op.kind == "layer" and op.inputs and 0 <= op.inputs[0] < len(self.program) and op.index is not None \
                    and 0 <= op.index < len(layers) and layers[op.index].source is None:
                layers[op.index] = replace(layers[op.index], source=self.program[op.inputs[0]].group, target=op.group)
        object.__setattr__(self, "layers", tuple(layers))

    def _check_input_shape(self) -> None:
        """``input_shape`` is the inputs' own: a feature map's (C, H, W), or its units' pixel coordinates
        (which a shape of as many pixels gives units that had none)."""
        first = self.groups[0]
        own = (first.size, *first.spatial) if first.is_feature_map else first.coordinates
        given = sample_shape(self.input_shape)
        if given is not None and own is None and np.prod(given) == first.size:
            own = given
            object.__setattr__(self, "groups", (replace(first, coordinates=given),) + self.groups[1:])
        if given is not None and given != own:
            raise InputError(f"input shape {','.join(map(str, given))} does not match the inputs "
                             f"({first.size} {'channels of ' + str(first.spatial) if first.is_feature_map else 'units'})")
        object.__setattr__(self, "input_shape", own)

    # -- sizes -----------------------------------------------------------------------------------
    @property
    def widths(self) -> tuple[int, ...]:
        """Neurons per group, inputs first (for a chain ``(n_0, n_1, ..., n_L)``)."""
        return tuple(group.size for group in self.groups)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    def layer_index(self, layer: int | str) -> int:
        """The forward index of a weight layer given by its index or its tensor name (an InputError naming
        both ways when there is no such layer)."""
        names = self.layer_names
        if isinstance(layer, str) and layer in names:
            return names.index(layer)
        try:
            index = int(layer)
        except (TypeError, ValueError):
            index = -1
        if not 0 <= index < len(names):
            listed = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
            raise InputError(f"no layer {layer!r} in {self.run}/{self.level}: give a weight layer's index "
                             f"0..{len(names) - 1} or its tensor name ({listed})")
        return index

    @property
    def input_features(self) -> int:
        """Numbers per sample that a forward pass reads (a dataset row, flattened row-major)."""
        first = self.groups[0]
        return first.size * (first.spatial[0] * first.spatial[1] if first.is_feature_map else 1)

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

    def value_shapes(self) -> list[tuple[int, tuple[int, int] | None]]:
        """The (neurons, (H, W) or None) per sample of the value of every op of the program."""
        return list(self._shapes)

    @property
    def is_sequential(self) -> bool:
        """True when the network is the plain chain of Linear layers that its layers and ``activation``
        describe (no convolution, batch norm, pooling or connection): what a chain store can hold."""
        return (
            not self.batchnorms
            and len(self.groups) == len(self.layers) + 1
            and all(l.conv is None and (l.source, l.target) == (i, i + 1) for i, l in enumerate(self.layers))
            and not any(g.is_feature_map or (i and g.coordinates) for i, g in enumerate(self.groups))
            and self.program == chain_program(len(self.layers), self.activation)
        )

    # -- edges -----------------------------------------------------------------------------------
    @cached_property
    def connections(self) -> tuple[Connection, ...]:
        """The weightless connections, from the add, concat and flatten ops of the program, in program order."""
        found = []
        for op in self.program:
            if op.kind not in ("add", "concat", "flatten"):
                continue
            offset = 0
            for i in op.inputs:
                source = self.program[i].group
                found.append(Connection(op.kind, source, op.group, offset if op.kind == "concat" else 0))
                offset += self.groups[source].size
        return tuple(found)

    @cached_property
    def _edge_list(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        off = self.offsets
        src = np.concatenate([layer.src.astype(np.int64) + off[layer.source] for layer in self.layers])
        dst = np.concatenate([layer.dst.astype(np.int64) + off[layer.target] for layer in self.layers])
        w = np.concatenate([layer.w for layer in self.layers])
        which = np.repeat(np.arange(len(self.layers), dtype=np.int32), [layer.edges for layer in self.layers])
        return _read_only(src, dst, w, which)

    def edge_list(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All synapses as global arrays ``(src, dst, w, layer)``; computed once, read-only. A convolution
        gives one synapse per surviving kernel weight, so a channel pair can appear several times."""
        return self._edge_list

    def kernel_offsets(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ky, kx)`` of every synapse of :meth:`edge_list` (int16; −1 for Linear layers)."""
        def axis(name):
            return np.concatenate([
                getattr(layer, name) if layer.conv is not None else np.full(layer.edges, -1, dtype=np.int16)
                for layer in self.layers
            ])
        return axis("ky"), axis("kx")

    def connection_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every weightless edge as global arrays ``(src, dst, connection)``, ``connection`` indexing
        :attr:`connections` (whose ``kind`` says add, concat or flatten)."""
        off, parts = self.offsets, []
        for c, connection in enumerate(self.connections):
            size = self.groups[connection.source].size
            if connection.kind == "flatten":
                per_channel = self.groups[connection.target].size // size
                src, dst = np.repeat(np.arange(size), per_channel), np.arange(size * per_channel)
            else:
                src = np.arange(size)
                dst = src + connection.offset
            parts.append((src + off[connection.source], dst + off[connection.target], np.full(len(src), c, dtype=np.int32)))
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32)
        return tuple(np.concatenate(column) for column in zip(*parts))

    def subnetwork(self, keep: np.ndarray) -> "Checkpoint":
        """The same network with only the synapses where ``keep`` (a boolean mask over :meth:`edge_list`) is
        true: what is left when the others are removed."""
        bounds = np.cumsum([0] + [layer.edges for layer in self.layers])
        layers = tuple(layer.subset(keep[bounds[i] : bounds[i + 1]]) for i, layer in enumerate(self.layers))
        return replace(self, layers=layers)

    def adjacency(self) -> sp.csr_matrix:
        """The directed ``V x V`` weight matrix of the synapses over global neuron indices (row = source;
        the kernel weights of one channel pair are summed)."""
        src, dst, w, _ = self.edge_list()
        n = self.neurons
        return sp.csr_matrix((w, (src, dst)), shape=(n, n))

    # -- neurons ---------------------------------------------------------------------------------
    def neuron_groups(self) -> np.ndarray:
        """Group of each neuron, in global order."""
        return np.repeat(np.arange(len(self.widths)), self.widths)

    neuron_layers = neuron_groups
    """The name :meth:`neuron_groups` had when every group was a layer of a chain."""

    def coordinates(self, group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(channel, y, x)`` of every unit of ``group``, or None when its units are not pixels."""
        shape = self.groups[group].coordinates
        return None if shape is None else np.unravel_index(np.arange(self.groups[group].size), shape)

    def input_coordinates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(channel, y, x)`` of every input neuron, or None when the inputs are not pixel units."""
        return self.coordinates(0)

    def unrolled(self, max_edges: int = UNROLL_MAX_EDGES):
        """The neuron graph of (channel, y, x) units with the Toeplitz connections of each convolution (see
        :mod:`netarchive.model.unrolled`); refuses with an InputError beyond ``max_edges`` edges."""
        from netarchive.model.unrolled import unroll

        return unroll(self, max_edges)

    # -- serialisation ---------------------------------------------------------------------------
    def architecture(self) -> dict:
        """The structure without the big arrays, as a JSON-able dict (format :data:`ARCHITECTURE_FORMAT`)::

            {"format": 1, "source": "traced from …", "activation": "relu", "input_shape": [C, H, W] | null,
             "groups": [{"name", "size", "spatial": [H, W] | null, "coordinates": [C, H, W] | null}, …],
             "layers": [{"name", "kind", "source", "target"[, "conv": {"kernel", "in_spatial", "stride",
                         "padding", "dilation", "groups", "dims"}]}, …],
             "batchnorms": [{"name", "group", "eps"}, …],
             "program": [{"op", "inputs", "group"[, "index"][, params…]}, …]}

        :meth:`from_architecture` rebuilds the checkpoint from it and :meth:`arrays`.
        """
        layers = []
        for layer in self.layers:
            spec = {"name": layer.name, "kind": layer.kind, "source": layer.source, "target": layer.target}
            if layer.conv is not None:
                spec["conv"] = layer.conv.to_dict()
            layers.append(spec)
        return {
            "format": ARCHITECTURE_FORMAT,
            "source": self.architecture_source,
            "activation": self.activation,
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "groups": [group.to_dict() for group in self.groups],
            "layers": layers,
            "batchnorms": [{"name": norm.name, "group": norm.group, "eps": norm.eps} for norm in self.batchnorms],
            "program": [op.to_dict() for op in self.program],
        }

    def arrays(self) -> dict[str, list[dict[str, np.ndarray | None]]]:
        """The arrays :meth:`architecture` leaves out: ``{"layers": [{"src", "dst", "w", "ky", "kx", "bias"}, …],
        "batchnorms": [{"running_mean", "running_var", "weight", "bias"}, …]}`` (None where absent). Biases
        are one per neuron of the layer's target group, batch-norm arrays one per neuron of its group."""
        return {
            "layers": [{"src": l.src, "dst": l.dst, "w": l.w, "ky": l.ky, "kx": l.kx, "bias": l.bias} for l in self.layers],
            "batchnorms": [norm.arrays() for norm in self.batchnorms],
        }

    @classmethod
    def from_architecture(cls, architecture: Mapping, arrays: Mapping, *, run: str, level: int,
                          metrics: Mapping[str, float] | None = None, meta: Mapping[str, str] | None = None,
                          curves: Mapping[str, tuple] | None = None) -> "Checkpoint":
        """The checkpoint of ``architecture`` (see :meth:`architecture`) with the arrays of :meth:`arrays`."""
        if architecture.get("format") != ARCHITECTURE_FORMAT:
            raise InputError(f"architecture format {architecture.get('format')!r} is not {ARCHITECTURE_FORMAT}: "
                             "written by another version of netarchive")
        groups = tuple(Group(g["name"], g["size"], g.get("spatial"), g.get("coordinates")) for g in architecture["groups"])
        layers = tuple(
            Layer(spec["name"], groups[spec["source"]].size, groups[spec["target"]].size, a["src"], a["dst"], a["w"],
                  a.get("bias"), ky=a.get("ky"), kx=a.get("kx"), conv=Conv(**spec["conv"]) if spec.get("conv") else None,
                  source=spec["source"], target=spec["target"])
            for spec, a in zip(architecture["layers"], arrays["layers"], strict=True)
        )
        batchnorms = tuple(
            BatchNorm(spec["name"], spec["group"], eps=spec["eps"], **a)
            for spec, a in zip(architecture["batchnorms"], arrays["batchnorms"], strict=True)
        )
        return cls(run, level, layers, architecture.get("input_shape"), dict(metrics or {}), dict(meta or {}),
                   architecture["activation"], groups=groups, batchnorms=batchnorms,
                   program=tuple(Op.from_dict(op) for op in architecture["program"]),
                   architecture_source=architecture["source"], curves=dict(curves or {}))


def _group_name(layer_name: str, l: int) -> str:
    """The group a chain layer feeds, named after its module: ``fc1.weight`` -> ``fc1``."""
    for suffix in (".weight", "_weight"):
        if layer_name.endswith(suffix) and len(layer_name) > len(suffix):
            return layer_name[: -len(suffix)]
    return layer_name if layer_name != "weight" else f"layer{l}"


def _curve(name: str, iterations, values) -> tuple[np.ndarray, np.ndarray]:
    """One training curve as ``(int64 iterations ascending, float64 values)``, checked."""
    iterations = np.asarray(iterations, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if iterations.ndim != 1 or iterations.shape != values.shape:
        raise InputError(f"curve {name!r}: iterations and values must be 1-D arrays of one length")
    if len(iterations) > 1 and not (np.diff(iterations) > 0).all():
        raise InputError(f"curve {name!r}: iterations must be strictly ascending")
    return iterations, values


def _read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for array in arrays:
        array.flags.writeable = False
    return arrays
