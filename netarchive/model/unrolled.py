"""The unrolled neuron graph: one unit per (channel, y, x) of every feature map, with the Toeplitz
connections of each convolution.

A feature-map group of C channels of H×W becomes C·H·W units, numbered ``c·H·W + y·W + x`` within the
group (row-major, as ``torch.flatten``); a group of units stays as it is. An output unit (j, y, x) of a
convolution receives one edge of weight ``w`` from the input unit under each surviving kernel weight
(i, ky, kx) of its receptive field (``y·stride − padding + ky·dilation``, likewise for x; padding has no
units). Between a group and the convolution reading it, pooling maps each pooled position to the window of
positions it reads, so the edge goes to every unit of that window (pools are not groups: they have no
neurons of their own). Residual additions, concatenations and flattens connect the units that the values
carry: unit (c, y, x) → (c, y, x), → (offset + c, y, x), → the flattened unit c·H·W + y·W + x.

Weights are shared across positions, so this graph is large (VGG-16 on 32×32: ~300 M edges): it is built
on demand and refused beyond a bound (:data:`~netarchive.model.graph.UNROLL_MAX_EDGES` by default).

Example::

    >>> import numpy as np
    >>> from netarchive.model import Checkpoint, Conv, Group, Layer, Op
    >>> conv = Layer.from_dense("c.weight", np.ones((1, 1, 2, 2)), conv=Conv(kernel=(2, 2), in_spatial=(3, 3)), source=0, target=1)
    >>> net = Checkpoint("r", 0, (conv,), groups=(Group("input", 1, (3, 3)), Group("c", 1, (2, 2))),
    ...                  program=(Op("input"), Op("layer", (0,), 1, 0)))
    >>> unrolled = net.unrolled()
    >>> unrolled.widths, len(unrolled.edge_list()[0])    # 9 + 4 units, 4 outputs x 4 kernel weights
    ((9, 4), 16)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from netarchive.errors import InputError
from netarchive.model.numbering import Numbered, offsets_of
from netarchive.model.program import POOLS


@dataclass(frozen=True, eq=False)
class Unrolled(Numbered):
    """The unit graph of a checkpoint: ``widths`` units per group (in the checkpoint's group order), the
    synapse edges (as :meth:`Checkpoint.edge_list`) and the weightless edges (as
    :meth:`Checkpoint.connection_edges`), over global unit indices ``offsets[g] + unit``."""

    widths: tuple[int, ...]
    spatial: tuple[tuple[int, int] | None, ...]
    synapses: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    weightless: tuple[np.ndarray, np.ndarray, np.ndarray]
    synapse: np.ndarray
    """For each edge of :meth:`edge_list`, the index of the checkpoint synapse (in ``Checkpoint.edge_list()``)
    it repeats: all positions of one kernel weight share it, so removing a synapse removes them all."""

    def edge_list(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(src, dst, w, layer)``: one edge per kernel weight and output position (Linear synapses once)."""
        return self.synapses

    def connection_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(src, dst, connection)``, ``connection`` indexing the checkpoint's ``connections``."""
        return self.weightless

    def unit_coordinates(self, group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(channel, y, x)`` of the units of a feature-map group (None for a group of units)."""
        if self.spatial[group] is None:
            return None
        h, w = self.spatial[group]
        return np.unravel_index(np.arange(self.widths[group]), (self.widths[group] // (h * w), h, w))


def unroll(checkpoint, max_edges: int) -> Unrolled:
    """The :class:`Unrolled` graph of ``checkpoint``; InputError when it would exceed ``max_edges`` edges."""
    groups, program, shapes = checkpoint.groups, checkpoint.program, checkpoint.value_shapes()
    areas = [g.spatial[0] * g.spatial[1] if g.is_feature_map else 1 for g in groups]
    widths = tuple(g.size * area for g, area in zip(groups, areas))
    offsets = offsets_of(widths)
    maps = _position_maps(program, shapes)
    layer_parts, connection_parts = [], []
    for position, op in enumerate(program):
        if op.kind == "layer":
            layer = checkpoint.layers[op.index]
            layer_parts.append((op.index, layer, _layer_plan(layer, maps[op.inputs[0]], shapes[op.inputs[0]])))
        elif op.kind in ("add", "concat", "flatten"):
            channel = 0
            for i in op.inputs:
                source = program[i].group
                connection_parts.append((source, op.group, channel, _pairs(maps[i], shapes[i])))
                channel += groups[source].size if op.kind == "concat" else 0
    total = sum(_layer_count(layer, plan) for _, layer, plan in layer_parts)
    total += sum(groups[source].size * len(pairs[0]) for source, _, _, pairs in connection_parts)
    if total > max_edges:
        raise InputError(f"the unrolled graph would have {total:,} edges, more than the bound of {max_edges:,}: "
                         "analyse the channel graph, or raise the bound if memory allows (~32 bytes per edge)")
    first = np.cumsum([0] + [layer.edges for layer in checkpoint.layers])
    synapses = [_layer_edges(index, layer, plan, offsets, areas, first[index]) for index, layer, plan in layer_parts]
    connections = [
        _connection_edges(c, source, target, channel, pairs, groups[source].size, offsets, areas)
        for c, (source, target, channel, pairs) in enumerate(connection_parts)
    ]
    *edges, synapse = _stack(synapses, (np.int64, np.int64, np.float32, np.int32, np.int64))
    return Unrolled(widths, tuple(g.spatial for g in groups), tuple(edges),
                    _stack(connections, (np.int64, np.int64, np.int32)), synapse)


def _window(op, axis: int, size: int, out: int) -> sp.csr_matrix:
    """Along ``axis``, the ``[out, size]`` 0/1 matrix of which input positions each pooled position reads."""
    if op.kind.startswith("adaptive"):
        rows = [np.arange(o * size // out, -(-(o + 1) * size // out)) for o in range(out)]
    else:
        k, s, p = (op.params[name][axis] for name in ("kernel", "stride", "padding"))
        d = op.params.get("dilation", (1, 1))[axis]
        rows = [o * s - p + d * np.arange(k) for o in range(out)]
    row = np.concatenate([np.full(len(r), o) for o, r in enumerate(rows)])
    col = np.concatenate(rows)
    valid = (col >= 0) & (col < size)
    return sp.csr_matrix((np.ones(valid.sum(), dtype=np.int8), (row[valid], col[valid])), shape=(out, size))


def _position_maps(program, shapes) -> list[sp.csr_matrix | None]:
    """For each value, the 0/1 matrix [positions of the value, positions of its group] (None: the same)."""
    maps: list[sp.csr_matrix | None] = []
    for op in program:
        if op.kind in POOLS:
            (_, before), (_, after) = shapes[op.inputs[0]], shapes[len(maps)]
            pool = sp.kron(_window(op, 0, before[0], after[0]), _window(op, 1, before[1], after[1]), format="csr")
            previous = maps[op.inputs[0]]
            maps.append(((pool @ previous) if previous is not None else pool).astype(bool).astype(np.int8).tocsr())
        elif op.kind in ("batchnorm", "activation"):
            maps.append(maps[op.inputs[0]])
        else:
            maps.append(None)
    return maps


def _pairs(position_map, shape) -> tuple[np.ndarray, np.ndarray, int]:
    """(group position, value position) pairs that a value's positions read, and the value's positions."""
    _, spatial = shape
    area = 1 if spatial is None else spatial[0] * spatial[1]
    if position_map is None:
        return np.arange(area), np.arange(area), area
    value, group = position_map.nonzero()
    return group, value, area


def _axis_pairs(size: int, out: int, k: int, stride: int, padding: int, dilation: int) -> tuple[np.ndarray, np.ndarray]:
    """Along one axis, the (input, output) positions joined by kernel offset k."""
    o = np.arange(out)
    i = o * stride - padding + k * dilation
    valid = (i >= 0) & (i < size)
    return i[valid], o[valid]


def kernel_positions(conv, ky: int, kx: int) -> tuple[np.ndarray, np.ndarray]:
    """The (input position, output position) pairs that kernel offset (ky, kx) of convolution ``conv`` joins,
    positions row-major (``y·W + x``) in its input (``conv.in_spatial``) and its output; padding has none."""
    (h, w), (oh, ow) = conv.in_spatial, conv.out_spatial
    iy, oy = _axis_pairs(h, oh, ky, conv.stride[0], conv.padding[0], conv.dilation[0])
    ix, ox = _axis_pairs(w, ow, kx, conv.stride[1], conv.padding[1], conv.dilation[1])
    return (iy[:, None] * w + ix[None, :]).ravel(), (oy[:, None] * ow + ox[None, :]).ravel()


def unrolled_layer(layer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One weight layer alone as the bipartite graph of its units: ``(input unit, output unit, synapse)`` per
    edge, ``synapse`` indexing the layer's arrays. A convolution's input units are the ``C_in·H·W`` of the
    value it reads (``conv.in_spatial``, after any pooling), its output units ``C_out·H_out·W_out``, numbered
    ``c·H·W + y·W + x``; a Linear layer's are its neurons. One edge per kernel weight and output position."""
    if layer.conv is None:
        return layer.src.astype(np.int64), layer.dst.astype(np.int64), np.arange(layer.edges)
    areas = [int(np.prod(layer.conv.in_spatial)), int(np.prod(layer.conv.out_spatial))]
    return _unit_edges(layer, _layer_plan(layer, None, None), *areas)


def _layer_plan(layer, position_map, shape):
    """For a convolution, per kernel offset (ky, kx): (group position, output position) pairs; None for Linear."""
    if layer.conv is None:
        return None
    plan = {}
    for ky, kx in set(zip(layer.ky.tolist(), layer.kx.tolist())):
        q_in, q_out = kernel_positions(layer.conv, ky, kx)
        if position_map is not None:
            rows, q_group = position_map[q_in].nonzero()
            q_in, q_out = q_group, q_out[rows]
        plan[(ky, kx)] = (q_in, q_out)
    return plan


def _layer_count(layer, plan) -> int:
    if plan is None:
        return layer.edges
    sizes = {key: len(pairs[0]) for key, pairs in plan.items()}
    return int(sum(sizes[key] for key in zip(layer.ky.tolist(), layer.kx.tolist())))


def _layer_edges(index, layer, plan, offsets, areas, first):
    """The layer's unrolled edges (src, dst, w, layer, synapse), ``first`` = its first synapse's index."""
    source, target = layer.source, layer.target
    if plan is None:
        return (layer.src + offsets[source], layer.dst + offsets[target], layer.w, np.full(layer.edges, index),
                first + np.arange(layer.edges))
    src, dst, synapse = _unit_edges(layer, plan, areas[source], areas[target])
    return offsets[source] + src, offsets[target] + dst, layer.w[synapse], np.full(len(src), index), first + synapse


def _unit_edges(layer, plan, area_in: int, area_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input unit, output unit, synapse) of every edge of a convolution's ``plan``, units numbered within
    the groups (channel · area + position)."""
    parts = []
    for (ky, kx), (q_in, q_out) in plan.items():
        chosen = np.flatnonzero((layer.ky == ky) & (layer.kx == kx))
        src = layer.src[chosen].astype(np.int64)[:, None] * area_in + q_in[None, :]
        dst = layer.dst[chosen].astype(np.int64)[:, None] * area_out + q_out[None, :]
        parts.append((src.ravel(), dst.ravel(), np.repeat(chosen, len(q_in))))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return tuple(np.concatenate(column) for column in zip(*parts))


def _connection_edges(c, source, target, channel, pairs, channels, offsets, areas):
    """Unit (ch, q) of the value -> unit (channel + ch)·area + q of the target, from each group unit it reads."""
    q_group, q_value, area = pairs
    ch = np.arange(channels, dtype=np.int64)[:, None]
    src = offsets[source] + ch * areas[source] + q_group[None, :]
    dst = offsets[target] + (ch + channel) * area + q_value[None, :]
    return src.ravel(), dst.ravel(), np.full(src.size, c)


def _stack(parts, dtypes):
    if not parts:
        return tuple(np.zeros(0, dtype) for dtype in dtypes)
    return tuple(np.concatenate(column).astype(dtype) for column, dtype in zip(zip(*parts), dtypes))
