"""The program of a network: the operations its forward pass executes, in topological order.

Each :class:`Op` reads the values of earlier ops (``inputs``, positions in the program) and produces one
value, which belongs to one neuron group (``group``): the input op gives group 0; a ``layer`` op gives its
layer's target group; ``add``, ``concat`` and ``flatten`` give a new group each; ``batchnorm``,
``activation`` and the pools keep the group of their input (a pool changes the spatial size of the value,
not its channels). The last op's value is the network's output. Dropout and identities are not ops: in
eval mode they do nothing.

Values are ``[N, features]`` for units and ``[N, C, H, W]`` for feature maps (1-D ones as ``H = 1``).

========================  =====================================================================
kind                      params
========================  =====================================================================
input                     —
layer, batchnorm          ``index`` names the layer / batch norm
activation                ``function`` (one of :data:`FUNCTIONS`); ``slope`` for leaky_relu,
                          ``approximate`` ("tanh") for a tanh-approximated gelu
maxpool                   ``kernel``, ``stride``, ``padding``, ``dilation``, ``ceil_mode``
avgpool                   ``kernel``, ``stride``, ``padding``, ``ceil_mode``, ``count_include_pad``,
                          ``divisor_override``
adaptive_maxpool/avgpool  ``output_size`` (H, W)
flatten, add, concat      — (concat joins channels / features, dim 1)
========================  =====================================================================
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netarchive.errors import InputError

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "identity")
"""The nonlinearities a run of a plain chain can have between its hidden layers (``--activation``)."""
FUNCTIONS = ACTIVATIONS + ("leaky_relu",)
"""The activation functions a program can apply."""
POOLS = ("maxpool", "avgpool", "adaptive_maxpool", "adaptive_avgpool")
KINDS = ("input", "layer", "batchnorm", "activation", *POOLS, "flatten", "add", "concat")
NEW_GROUP = ("input", "layer", "flatten", "add", "concat")
"""Kinds whose value is a new neuron group; the others keep the group of their input."""


def _canonical(value):
    return tuple(_canonical(v) for v in value) if isinstance(value, (list, tuple)) else value


@dataclass(frozen=True)
class Op:
    """One operation of the program (see the module docstring for the kinds and their params)."""

    kind: str
    inputs: tuple[int, ...] = ()
    group: int = 0
    index: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise InputError(f"unknown operation {self.kind!r} in the program (known: {', '.join(KINDS)})")
        object.__setattr__(self, "inputs", tuple(int(i) for i in self.inputs))
        object.__setattr__(self, "params", {key: _canonical(value) for key, value in self.params.items()})

    def to_dict(self) -> dict:
        """JSON-able: ``{"op": kind, "inputs": [...], "group": g[, "index": i][, params...]}``."""
        out = {"op": self.kind, "inputs": list(self.inputs), "group": self.group}
        if self.index is not None:
            out["index"] = self.index
        for key, value in self.params.items():
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> "Op":
        data = dict(data)
        kind, inputs, group, index = data.pop("op"), data.pop("inputs", ()), data.pop("group", 0), data.pop("index", None)
        return cls(kind, tuple(inputs), int(group), index, data)


def chain_program(layers: int, activation: str) -> tuple[Op, ...]:
    """The program of a plain chain: layer, activation, layer, …, layer (no activation after the last)."""
    ops = [Op("input")]
    for l in range(layers):
        ops.append(Op("layer", (len(ops) - 1,), l + 1, l))
        if l < layers - 1:
            ops.append(Op("activation", (len(ops) - 1,), l + 1, params={"function": activation}))
    return tuple(ops)


def pool_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """The output size of a pooling window along one axis, exactly as torch computes it."""
    out = (size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def pooled_spatial(op: Op, spatial: tuple[int, int]) -> tuple[int, int]:
    """The (H, W) after the pool ``op`` of a feature map of size ``spatial``."""
    p = op.params
    if op.kind.startswith("adaptive"):
        return tuple(p["output_size"])
    dilation = p.get("dilation", (1, 1))
    return tuple(
        pool_size(spatial[a], p["kernel"][a], p["stride"][a], p["padding"][a], dilation[a], p["ceil_mode"]) for a in (0, 1)
    )


Shape = tuple[int, "tuple[int, int] | None"]
"""A value's shape per sample: (neurons, (H, W)) for a feature map, (neurons, None) for units."""


def value_shapes(program: Sequence[Op], groups: Sequence, layers: Sequence, batchnorms: Sequence) -> list[Shape]:
    """The shape of every value of the program, checking that each op fits what it reads and the group it
    belongs to; every layer and batch norm is applied exactly once and every group made by exactly one op.
    Raises InputError naming the op."""
    if not program or program[0].kind != "input" or program[0].group != 0:
        raise InputError("a program starts with its input op (group 0)")
    shapes: list[Shape] = []
    made = [0] * len(groups)
    used = {"layer": [0] * len(layers), "batchnorm": [0] * len(batchnorms)}
    for position, op in enumerate(program):
        where = f"op {position} ({op.kind})"
        if any(i < 0 or i >= position for i in op.inputs):
            raise InputError(f"{where} reads values that are not computed before it")
        if len(op.inputs) != (0 if op.kind == "input" else 1) and not (op.kind in ("add", "concat") and op.inputs):
            raise InputError(f"{where} reads {len(op.inputs)} values")
        if not 0 <= op.group < len(groups):
            raise InputError(f"{where} refers to group {op.group}, which does not exist")
        if op.kind in used:
            if op.index is None or not 0 <= op.index < len(used[op.kind]):
                raise InputError(f"{where} refers to {op.kind} {op.index}, which does not exist")
            used[op.kind][op.index] += 1
        if op.kind == "layer" and (program[op.inputs[0]].group, op.group) != (layers[op.index].source, layers[op.index].target):
            raise InputError(f"{where}: layer {layers[op.index].name} joins groups {layers[op.index].source} -> "
                             f"{layers[op.index].target}, not {program[op.inputs[0]].group} -> {op.group}")
        inputs = [shapes[i] for i in op.inputs]
        shape = _shape(op, inputs, groups, layers, batchnorms, where)
        if op.kind in NEW_GROUP:
            made[op.group] += 1
            group = groups[op.group]
            if (group.size, group.spatial) != shape:
                raise InputError(f"{where} makes {shape} but its group {group.name!r} has {(group.size, group.spatial)}")
        elif op.group != program[op.inputs[0]].group:
            raise InputError(f"{where} must keep the group of its input")
        shapes.append(shape)
    for kind, counts in (("group", made), *used.items()):
        if any(count != 1 for count in counts):
            raise InputError(f"each {kind} must appear in exactly one op of the program (counts: {counts})")
    return shapes


def _shape(op: Op, inputs: list[Shape], groups, layers, batchnorms, where: str) -> Shape:
    if op.kind == "input":
        return groups[0].size, groups[0].spatial
    (size, spatial), *rest = inputs
    if op.kind == "layer":
        layer = layers[op.index]
        wanted = (layer.inputs, None if layer.conv is None else layer.conv.in_spatial)
        if (size, spatial) != wanted:
            raise InputError(f"{where}: layer {layer.name} takes {wanted} but reads {(size, spatial)}")
        return layer.outputs, None if layer.conv is None else layer.conv.out_spatial
    if op.kind == "batchnorm":
        norm = batchnorms[op.index]
        if size != norm.size or norm.group != op.group:
            raise InputError(f"{where}: batch norm {norm.name} of {norm.size} neurons of group {norm.group} "
                             f"reads {size} neurons of group {op.group}")
        return size, spatial
    if op.kind == "activation":
        if op.params.get("function") not in FUNCTIONS:
            raise InputError(f"{where}: unknown activation {op.params.get('function')!r} (known: {', '.join(FUNCTIONS)})")
        return size, spatial
    if op.kind in POOLS:
        if spatial is None:
            raise InputError(f"{where}: pooling needs a feature map")
        out = pooled_spatial(op, spatial)
        if min(out) < 1:
            raise InputError(f"{where}: the pool leaves nothing of the {spatial} input")
        return size, out
    if op.kind == "flatten":
        if spatial is None:
            raise InputError(f"{where}: only a feature map is flattened")
        return size * spatial[0] * spatial[1], None
    if op.kind == "add":
        if any(shape != (size, spatial) for shape in rest):
            raise InputError(f"{where}: added values differ in shape: {[(size, spatial), *rest]}")
        return size, spatial
    if any(shape[1] != spatial for shape in rest):
        raise InputError(f"{where}: concatenated values differ in spatial size: {[(size, spatial), *rest]}")
    return size + sum(shape[0] for shape in rest), spatial
