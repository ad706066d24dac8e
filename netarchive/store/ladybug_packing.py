"""``SYNAPSE.packed``: each synapse of the embedded archive in one INT64, which a bulk read returns alone.

LadybugDB 0.22 spends about the same time on every value a query returns (about 0.1 us; bench/README.md),
so reading a synapse's ends, weight, layer and kernel offset as six columns costs six times one column.
The packed column holds them all::

    packed = position * 2**32 + the float32 bits of w

``position`` is the weight's index among every weight the checkpoint's layers could hold: the layers in
forward order, each as the dense tensor ``W[target, source, ky, kx]`` flattened (torch's own order for a
``Linear`` and a convolution with ``groups=1``; a grouped convolution counts its source group whole), the
source and target indices within the layer's groups. So the position gives the layer, both ends and the
kernel offset, and the low 32 bits the weight. ``w``, ``layer``, ``ky`` and ``kx`` stay the properties
Cypher users query; ``packed`` is a storage detail of the embedded archive (not on Neo4j, whose reads are
bound by Bolt, and left out of the property maps ``Store.cypher`` returns).

Synapses archived before the column, and those of checkpoints of 2**31 or more potential weights, have
none (null) and are read from their six columns. (The Arrow path does not return nulls as nulls: a read
counts the non-null values first, ladybug.py.)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from netarchive.errors import DamagedArchive
from netarchive.model.columns import layer_groups

MAX_POSITIONS = 2**31
"""From this many positions on the packed value would be negative: such checkpoints are not packed."""
_LOW = np.int64(0xFFFFFFFF)


class Packing:
    """The positions of one checkpoint's weights: its group widths and each layer's groups and kernel."""

    def __init__(self, widths: Sequence[int], architecture: Mapping | None, layers: int):
        sources, targets = layer_groups(architecture, layers)
        specs = architecture["layers"] if architecture is not None else [{}] * layers
        kernels = [tuple(spec["conv"]["kernel"]) if spec.get("conv") else (1, 1) for spec in specs]
        self.group_start = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
        self.source, self.target = np.asarray(sources, np.int64), np.asarray(targets, np.int64)
        self.conv = np.array([bool(spec.get("conv")) for spec in specs], dtype=bool)
        widths = np.asarray(widths, np.int64)
        self.source_width = widths[self.source] if layers else np.zeros(0, np.int64)
        self.kh, self.kw = (np.array([k[axis] for k in kernels], np.int64).reshape(-1) for axis in (0, 1))
        sizes = widths[self.target] * self.source_width * self.kh * self.kw if layers else np.zeros(0, np.int64)
        self.start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.fits = int(self.start[-1]) <= MAX_POSITIONS

    def pack(self, columns: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """The packed values of synapse columns (as model.columns.synapse_columns gives them: global ends,
        ``ky``/``kx`` of Linear synapses ignored), or None when the checkpoint has too many positions."""
        if not self.fits:
            return None
        layer = np.asarray(columns["layer"], np.intp)
        src = np.asarray(columns["src"], np.int64) - self.group_start[self.source[layer]]
        dst = np.asarray(columns["dst"], np.int64) - self.group_start[self.target[layer]]
        conv = self.conv[layer]  # ky/kx of Linear synapses ignored: -1, or what the Arrow path reads for null
        ky, kx = (np.where(conv, np.asarray(columns[axis], np.int64), 0) for axis in ("ky", "kx"))
        position = self.start[layer] + ((dst * self.source_width[layer] + src) * self.kh[layer] + ky) * self.kw[layer] + kx
        bits = np.ascontiguousarray(columns["w"], np.float32).view(np.uint32).astype(np.int64)
        return (position << 32) | bits

    def unpack(self, packed: np.ndarray, run: str, level: int) -> dict[str, np.ndarray]:
        """Synapse columns (global ``src``/``dst``, ``w``, ``layer``, ``ky``/``kx`` -1 on Linear) from packed
        values, in the order of their layers (within a layer, as given). Raises DamagedArchive for a
        position no layer has.

        LadybugDB returns a checkpoint's synapses by source neuron, so they come in runs of one layer
        (interleaved only where a group feeds two layers: those are sorted first). Each run is decoded
        with its layer's divisors as scalars, in 32 bits (positions are below 2**31), and written where
        its layer goes: 2-3x the decode of every row with per-row divisors, and model.columns.split_synapses
        then slices the layers instead of sorting them."""
        packed = np.asarray(packed, np.int64)
        position = (packed >> 32).astype(np.int32)
        if len(packed) and (position.min() < 0 or position.max() >= self.start[-1]):
            raise DamagedArchive.checkpoint(run, level, "packed synapses of a weight layer it does not have")
        layer = np.searchsorted(self.start, position, side="right") - 1
        starts = np.flatnonzero(np.diff(layer, prepend=-1))
        if len(starts) > len(self.start):
            order = np.argsort(layer, kind="stable")
            packed, position, layer = packed[order], position[order], layer[order]
            starts = np.flatnonzero(np.diff(layer, prepend=-1))
        ends = np.append(starts[1:], len(packed))
        by_layer, sizes = np.argsort(layer[starts], kind="stable"), ends - starts
        targets = np.empty(len(starts), np.int64)
        targets[by_layer] = np.cumsum(sizes[by_layer]) - sizes[by_layer]  # where each run goes, runs in layer order
        columns = {name: np.empty(len(packed), kind) for name, kind in
                   (("src", np.int64), ("dst", np.int64), ("w", np.float32), ("layer", np.int16), ("ky", np.int16), ("kx", np.int16))}
        for begin, end, target in zip(starts, ends, targets):
            rows, l = slice(target, target + end - begin), layer[begin]
            self._decode(l, position[begin:end], {name: column[rows] for name, column in columns.items()})
            columns["w"][rows] = (packed[begin:end] & _LOW).astype(np.uint32).view(np.float32)
        return columns

    def _decode(self, l: int, position: np.ndarray, out: dict[str, np.ndarray]) -> None:
        """Fill ``out`` (views of the columns) with the ends, layer and kernel offset of layer ``l``'s positions."""
        rest = position - np.int32(self.start[l])
        out["layer"][:] = l
        if self.conv[l]:
            for axis, size in (("kx", np.int32(self.kw[l])), ("ky", np.int32(self.kh[l]))):
                quotient = rest // size
                out[axis][:] = rest - quotient * size
                rest = quotient
        else:
            out["ky"][:] = out["kx"][:] = -1
        width = np.int32(self.source_width[l])
        dst = rest // width
        out["src"][:] = rest - dst * width + self.group_start[self.source[l]]
        out["dst"][:] = dst + self.group_start[self.target[l]]
