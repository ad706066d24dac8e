"""How a network's weight layers become the chains of bipartite layers that motifs are counted on.

The motif counts of :mod:`netarchive.analysis.motifs` are those of a chain of bipartite layers, each one a
0/1 mask with a sign per entry. A plain chain of Linear layers is such a chain as it is. Any other
network is counted on its **channel graph**:

- a weight layer's mask is its channel pairs: input channel i and output channel j are connected when any
  kernel weight between them survives (a Linear layer: its surviving entries). The sign of a pair is the
  sign of the sum of its surviving kernel weights (a sum of exactly 0 counts as +);
- two weight layers a, b are *consecutive* when b reads a's output, directly or through residual
  additions and concatenations, which map channels identically (a's channel j is channel j of the sum, or
  channel offset + j of the concatenation): a motif chain runs from a's inputs through a's outputs into
  b's outputs. Through a concatenation, b is taken on the channels that come from a only (its pairs from
  them, and their slots in the null). Batch norms, activations and pools keep the channels and are
  transparent; a flatten ends every chain (the units after it are pixels of channels, not channels);
- when every layer has at most one consecutive layer on each side, each with the whole of its channels
  (VGG, LeNet, a CNN without skips), the network is a set of disjoint chains, each counted as a chain;
  otherwise (ResNets, the residual MLP) every layer, every consecutive pair and every consecutive triple is
  a chain of its own (:class:`Span`), so that each motif is counted once, in the span it covers.

Example::

    >>> from netarchive.loaders.traced import from_module        # doctest: +SKIP
    >>> spans, disjoint = motif_spans(from_module(resnet, run="r", level=0, input_shape=(3, 32, 32)))  # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netarchive.errors import InputError
from netarchive.model import Checkpoint, Layer

CONTINUE = ("add", "concat")
"""Connections through which motif chains continue (a flatten ends them)."""


def is_plain_chain(checkpoint: Checkpoint) -> bool:
    """A chain of Linear layers, layer l from group l to l + 1, without connections: counted as it is."""
    return not checkpoint.connections and all(
        layer.conv is None and (layer.source, layer.target) == (l, l + 1) for l, layer in enumerate(checkpoint.layers))


def channel_pairs(layer: Layer, inputs: slice | None = None) -> Layer:
    """The layer's mask of channel pairs as a Linear layer whose weight is the sum of the pair's surviving
    kernel weights; with ``inputs`` only the pairs from those input channels, renumbered from 0."""
    src, dst, w = layer.src.astype(np.int64), layer.dst.astype(np.int64), layer.w.astype(np.float64)
    count = layer.inputs
    if inputs is not None:
        keep = (src >= inputs.start) & (src < inputs.stop)
        src, dst, w, count = src[keep] - inputs.start, dst[keep], w[keep], inputs.stop - inputs.start
    if layer.conv is not None:
        code, where = np.unique(dst * count + src, return_inverse=True)
        w = np.bincount(where, weights=w, minlength=len(code))
        dst, src = np.divmod(code, count)
    return Layer(layer.name, count, layer.outputs, src, dst, w)


def consecutive(checkpoint: Checkpoint) -> list[list[tuple[int, int]]]:
    """For each weight layer a, the layers b that read its output through additions and concatenations only,
    with the offset of a's channels among b's inputs: ``[[(b, offset), …] for each a]``."""
    readers: dict[int, list[int]] = {}
    for b, layer in enumerate(checkpoint.layers):
        readers.setdefault(layer.source, []).append(b)
    out = []
    for a, layer in enumerate(checkpoint.layers):
        found, frontier = {}, [(layer.target, 0)]
        while frontier:
            group, offset = frontier.pop()
            for b in readers.get(group, ()):
                if found.setdefault(b, offset) != offset:
                    raise InputError(f"the channels of {layer.name} reach {checkpoint.layers[b].name} twice (a value "
                                     "concatenated with itself): motif chains through it are not defined")
            frontier += [(c.target, offset + c.offset) for c in checkpoint.connections
                         if c.source == group and c.kind in CONTINUE]
        out.append(sorted(found.items()))
    return out


@dataclass(frozen=True)
class Span:
    """Consecutive weight layers ``layers`` (forward indices) as a chain of channel-pair layers: ``chain``,
    a plain chain checkpoint of the same run and level, and ``pieces``, for each of its layers the
    (layer, first input channel) it was cut from (−1: all of the layer's inputs), which identifies the
    random layer of a null model that the span shares with other spans."""

    layers: tuple[int, ...]
    pieces: tuple[tuple[int, int], ...]
    chain: Checkpoint


def motif_spans(checkpoint: Checkpoint) -> tuple[list[Span], bool]:
    """The spans a network's motifs are counted on, and whether they are disjoint chains (each motif then
    counted within one of them, as in a chain) or every layer, consecutive pair and triple on its own."""
    after = consecutive(checkpoint)
    before: dict[int, list[tuple[int, int]]] = {}
    for a, found in enumerate(after):
        for b, offset in found:
            before.setdefault(b, []).append((a, offset))
    whole = [[(b, offset == 0 and checkpoint.layers[b].inputs == checkpoint.layers[a].outputs)
              for b, offset in found] for a, found in enumerate(after)]
    disjoint = all(len(found) <= 1 and all(full for _, full in found) for found in whole) and all(
        len(found) <= 1 for found in before.values())
    if disjoint:
        paths = []
        for start in range(len(checkpoint.layers)):
            if start in before:
                continue
            path = [start]
            while after[path[-1]]:
                path.append(after[path[-1]][0][0])
            paths.append(path)
        return [_span(checkpoint, path, [0] * len(path)) for path in paths], True
    spans = [_span(checkpoint, [l], [0]) for l in range(len(checkpoint.layers))]
    pairs = [(a, b, offset) for a, found in enumerate(after) for b, offset in found]
    spans += [_span(checkpoint, [a, b], [0, offset]) for a, b, offset in pairs]
    spans += [_span(checkpoint, [a, b, c], [0, offset, second])
              for a, b, offset in pairs for c, second in after[b]]
    return spans, False


def _span(checkpoint: Checkpoint, path: list[int], offsets: list[int]) -> Span:
    """The span of ``path``, layer k > 0 taken on the inputs where layer k − 1's channels arrive (at
    ``offsets[k]``), or on all of them when those are all its inputs."""
    layers, pieces = [], []
    for k, l in enumerate(path):
        layer = checkpoint.layers[l]
        width = checkpoint.layers[path[k - 1]].outputs if k else layer.inputs
        if k and (offsets[k], width) != (0, layer.inputs):
            layers.append(channel_pairs(layer, slice(offsets[k], offsets[k] + width)))
            pieces.append((l, offsets[k]))
        else:
            layers.append(channel_pairs(layer))
            pieces.append((l, -1))
    chain = Checkpoint(checkpoint.run, checkpoint.level, tuple(layers))
    return Span(tuple(path), tuple(pieces), chain)
