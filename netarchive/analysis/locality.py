"""Locality of pruned masks: which input pixels each unit reads, and how close together they are.

Iterative magnitude pruning of a fully connected network on images makes the first layers local: a
surviving unit reads a compact patch of pixels, often the same shape at different places (Pellegrini &
Biroli, "Neural network pruning denoises the features and makes local connectivity emerge in visual
tasks", ICML 2022). This module measures that on the Linear layers of an archived checkpoint that read pixels: its inputs,
when they are pixels (``Checkpoint.input_shape = (C, H, W)``, flattened row-major as ``torch.flatten``
does), or the units of a flattened feature map, whose coordinates are its (channel, y, x). ``layer`` is the
weight layer's forward index (0 = the first), as in every analysis; ``layer_name`` its tensor name.

Conventions:

- a unit's *receptive field* is the set of pixel neurons ``(channel, y, x)`` it reaches through surviving
  synapses: a layer that reads pixels, its own synapses; a Linear layer after it (through Linear layers
  only), its surviving paths, the boolean product of the masks. Convolutions, and Linear layers that read a
  residual addition or a concatenation, have no such field: they are refused in one line. Distances are
  spatial, in pixels; the channel only decides whether a pair of pixel neurons is *same-channel* or
  *cross-channel*;
- the random null places the same number ``k`` of input neurons uniformly at random, without
  replacement, among the ``N = m·H·W`` input neurons of the ``m`` channels the unit reaches
  (``within_channels=True``, the default) or among all ``C·H·W`` inputs (``within_channels=False``).
  Every expectation is exact, not sampled: for k of N, an ordered pair of distinct input neurons is
  chosen with probability ``k(k−1) / (N(N−1))``;
- ``locality = expected_pair_distance / mean_pair_distance``: 1 for random masks, > 1 when a unit's
  pixels are closer together than chance;
- displacements ``(dx, dy) = (x_j − x_i, y_j − y_i)`` over ordered pairs ``i ≠ j``, so every unordered
  pair is counted both ways and the histograms are symmetric.

Histograms and pair distances come from the autocorrelation of each unit's mask, computed by FFT
(Wiener–Khinchin), so the cost is ``O(units · C · H·W log(H·W))`` whatever the number of pixel pairs.

Example::

    >>> import numpy as np
    >>> from netarchive.model import Checkpoint, Layer
    >>> mask = np.zeros((1, 1, 5, 5)); mask[0, 0, 1:4, 1:4] = 1          # one unit reading a 3x3 patch
    >>> ckpt = Checkpoint("r", 0, (Layer.from_dense("fc", mask.reshape(1, 25)),), input_shape=(1, 5, 5))
    >>> unit_locality(ckpt)[["in_degree", "centroid_x", "centroid_y"]].iloc[0].tolist()
    [9.0, 2.0, 2.0]
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from netarchive.errors import InputError
from netarchive.model import Checkpoint

CHUNK_VALUES = 1 << 22
"""Mask values (units × C × H × W) transformed at once: bounds the memory of the FFTs (~100 MB)."""


# -- pixels and receptive fields ---------------------------------------------------------------
def input_shape(checkpoint: Checkpoint) -> tuple[int, int, int]:
    """``(C, H, W)`` of the checkpoint's inputs, or an InputError that says how to record it."""
    if checkpoint.input_shape is None:
        raise InputError(
            f"run {checkpoint.run!r} level {checkpoint.level} has no input shape, so its inputs are not pixels: "
            f"re-ingest it with `--replace --input-shape C,H,W` or run "
            f"`netarchive set-input-shape --run {checkpoint.run} C,H,W` (e.g. 1,28,28 or 3,32,32)"
        )
    return checkpoint.input_shape


@dataclass(frozen=True)
class Pixels:
    """The pixel units a layer's receptive fields lie in: group ``group`` of shape ``(C, H, W)``, its units'
    ``channel``, ``y``, ``x``, and ``path``, the Linear layers from that group to the layer."""

    group: int
    shape: tuple[int, int, int]
    channel: np.ndarray
    y: np.ndarray
    x: np.ndarray
    path: tuple[int, ...]


def pixels(checkpoint: Checkpoint, layer: int) -> Pixels:
    """The pixels the units of weight layer ``layer`` reach, back through Linear layers to a group of pixel
    units; a one-line InputError for a layer that locality does not apply to."""
    path = [layer]
    while True:
        current = checkpoint.layers[path[-1]]
        name = f"layer {path[-1]} ({current.name})"
        if current.conv is not None:
            raise InputError(f"locality applies to Linear layers that read pixels (inputs given --input-shape, or a "
                             f"flattened feature map), directly or through Linear layers: {name} is a convolution")
        source = checkpoint.groups[current.source]
        if source.coordinates is not None:
            channel, y, x = checkpoint.coordinates(current.source)
            return Pixels(current.source, source.coordinates, channel, y, x, tuple(reversed(path)))
        if current.source == 0:
            input_shape(checkpoint)  # the inputs have no shape: say how to give them one
        feeding = [k for k, other in enumerate(checkpoint.layers) if other.target == current.source]
        if not feeding:
            raise InputError(f"locality applies to Linear layers that read pixels (inputs given --input-shape, or a "
                             f"flattened feature map), directly or through Linear layers: {name} reads group "
                             f"{source.name!r}, which no weight layer makes and which is not pixels")
        path.append(feeding[0])


def check_layers(checkpoint: Checkpoint, layers: Sequence[int | str] | None, every: bool = True) -> list[int]:
    """The weight layers asked for (forward indices from 0, or tensor names), each checked to read pixels;
    by default every layer locality applies to (only the first unless ``every``; an InputError when there
    is none)."""
    count = len(checkpoint.layers)
    if layers is None:
        found = []
        for l in range(count):
            try:
                pixels(checkpoint, l)
            except InputError as error:
                last = error
                continue
            found.append(l)
        if not found:
            raise last
        return found if every else found[:1]
    chosen = [checkpoint.layer_index(layer) for layer in layers]
    for layer in chosen:
        pixels(checkpoint, layer)
    return chosen


def receptive_fields(checkpoint: Checkpoint, layer: int, weighted: bool = False) -> sp.csr_matrix:
    """The ``[units of layer, pixels]`` matrix of which pixel each unit of weight layer ``layer`` reaches
    (sorted CSR; pixels as :func:`pixels` gives them).

    Boolean (as 0/1 floats) by default: ``R = M`` for a layer that reads pixels, ``R_l = [M_l R_{l−1} > 0]``
    after it, the pixels connected to the unit through at least one surviving path. With ``weighted`` the
    entry is the sum over those paths of the product of ``|w|`` along the path (``|W_l| |W_{l−1}| ...``),
    which shows how strongly the unit reads each pixel.

    Example::

        >>> from netarchive.model import Layer
        >>> ckpt = Checkpoint("r", 0, (Layer.from_dense("a", [[1, 1, 0]]), Layer.from_dense("b", [[2.0]])), input_shape=(1, 1, 3))
        >>> receptive_fields(ckpt, 1, weighted=True).toarray()
        array([[2., 2., 0.]])
    """
    field = None
    for current in (checkpoint.layers[l] for l in pixels(checkpoint, checkpoint.layer_index(layer)).path):
        matrix = current.matrix().astype(np.float64)
        matrix.data = np.abs(matrix.data) if weighted else np.ones_like(matrix.data)
        field = matrix if field is None else (matrix @ field).tocsr()
        if not weighted:
            field.data[:] = 1.0
        field.eliminate_zeros()
    field.sum_duplicates()
    field.sort_indices()
    return field


def _channels_reached(grid: Pixels, field: sp.csr_matrix) -> np.ndarray:
    """How many pixel channels each row of a receptive-field matrix touches."""
    channel = np.asarray(grid.channel)
    onehot = sp.csr_matrix((np.ones(len(channel)), (np.arange(len(channel)), channel)), shape=(len(channel), grid.shape[0]))
    return np.asarray(((field @ onehot) > 0).sum(axis=1)).ravel()


# -- FFT autocorrelations --------------------------------------------------------------------------
def _chunks(rows: int, values_per_row: int) -> Iterator[slice]:
    step = max(1, CHUNK_VALUES // max(1, values_per_row))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


def _spectra(field: sp.csr_matrix, shape: tuple[int, int, int], rows: slice) -> tuple[np.ndarray, np.ndarray]:
    """Power spectra of the masks of ``rows``: (of the channel sum, summed over channels of each channel).

    Their inverse transforms are the autocorrelations ``h(d) = Σ_p m(p) m(p + d)`` (all pairs, and
    same-channel pairs), on a ``2H × 2W`` grid so that nothing wraps around.
    """
    channels, height, width = shape
    masks = field[rows].toarray().reshape(-1, channels, height, width)
    spectra = np.fft.rfft2(masks, s=(2 * height, 2 * width))
    total = np.abs(spectra.sum(axis=1)) ** 2
    same = (np.abs(spectra) ** 2).sum(axis=1)
    return total, same


def _unshift(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """A ``2H × 2W`` circular correlation to the ``(2H−1) × (2W−1)`` grid of dy, dx = −(H−1)..H−1, −(W−1)..W−1."""
    rolled = np.roll(grid, (height - 1, width - 1), axis=(-2, -1))
    return rolled[..., : 2 * height - 1, : 2 * width - 1]


def _displacement_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    dy, dx = np.meshgrid(np.arange(-(height - 1), height), np.arange(-(width - 1), width), indexing="ij")
    return dy, dx


def pixel_pairs(height: int, width: int) -> np.ndarray:
    """Ordered pairs of pixels (distinct or not) of an ``H × W`` image at each displacement: ``(H−|dy|)(W−|dx|)``."""
    dy, dx = _displacement_grid(height, width)
    return ((height - np.abs(dy)) * (width - np.abs(dx))).astype(np.float64)


def _null_pairs(k: np.ndarray, m: np.ndarray, shape, within_channels: bool):
    """Per unit: the null's probability of an ordered pair, and its count of channels."""
    channels, height, width = shape
    m = m.astype(np.float64) if within_channels else np.full(len(k), float(channels))
    n = m * height * width
    k = k.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        probability = np.where(n > 1, k * (k - 1) / (n * (n - 1)), 0.0)
    return probability, m


# -- per-unit statistics ---------------------------------------------------------------------------
def unit_locality(checkpoint: Checkpoint, layers: Sequence[int] | None = None, within_channels: bool = True) -> pd.DataFrame:
    """One row per unit: how many inputs it reaches and how close together they are.

    Columns: ``run, level, layer, layer_name, index, in_degree, channels, centroid_x, centroid_y, spread,
    mean_pair_distance, expected_pair_distance, locality``. ``spread`` is the RMS distance of the unit's
    pixels from their centroid; ``mean_pair_distance`` averages the distance over pairs of its input
    neurons; ``expected_pair_distance`` is that mean for the same number of inputs placed at random
    (exact, see the module docstring: it does not depend on k); ``locality`` is their ratio (> 1 = more
    local than chance). Distances are NaN below 2 inputs, centroids NaN for disconnected units.

    Example::

        >>> frame = unit_locality(ckpt)                    # doctest: +SKIP
        >>> frame.groupby("layer").locality.median()       # doctest: +SKIP
    """
    frames = []
    for layer in check_layers(checkpoint, layers):
        grid = pixels(checkpoint, layer)
        shape = grid.shape
        _, height, width = shape
        y, x = grid.y.astype(np.float64), grid.x.astype(np.float64)
        dy, dx = _displacement_grid(height, width)
        distance = np.hypot(dx, dy)
        pixel_distance_sum = float((pixel_pairs(height, width) * distance).sum())
        field = receptive_fields(checkpoint, layer)
        k = np.asarray(field.sum(axis=1)).ravel()
        m = _channels_reached(grid, field)
        with np.errstate(divide="ignore", invalid="ignore"):
            cx, cy = (field @ x) / k, (field @ y) / k
            spread = np.sqrt(np.maximum((field @ (x * x + y * y)) / k - cx * cx - cy * cy, 0.0))
        pair_sum = np.zeros(len(k))
        for rows in _chunks(field.shape[0], field.shape[1] * 4):
            total, _ = _spectra(field, shape, rows)
            correlation = _unshift(np.rint(np.fft.irfft2(total, s=(2 * height, 2 * width))), height, width)
            pair_sum[rows] = (correlation * distance).sum(axis=(1, 2))
        probability, m_null = _null_pairs(k, m, shape, within_channels)
        with np.errstate(divide="ignore", invalid="ignore"):
            n = m_null * height * width
            mean_pair = np.where(k >= 2, pair_sum / (k * (k - 1)), np.nan)
            expected = np.where(k >= 2, m_null * m_null * pixel_distance_sum / (n * (n - 1)), np.nan)
            locality = expected / mean_pair
        frames.append(
            pd.DataFrame(
                {
                    "run": checkpoint.run,
                    "level": checkpoint.level,
                    "layer": layer,
                    "layer_name": checkpoint.layers[layer].name,
                    "index": np.arange(len(k)),
                    "in_degree": k.astype(np.int64),
                    "channels": m.astype(np.int64),
                    "centroid_x": cx,
                    "centroid_y": cy,
                    "spread": spread,
                    "mean_pair_distance": mean_pair,
                    "expected_pair_distance": expected,
                    "locality": locality,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def locality_summary(units: pd.DataFrame, top: float = 0.1) -> pd.DataFrame:
    """Per layer, from :func:`unit_locality`: how many units are still connected, their in-degrees, and
    the mean locality of all units and of the ``top`` fraction most connected ones (ranked by in-degree).

    Columns: ``run, level, layer, layer_name, units, connected, connected_fraction, in_degree_mean, in_degree_min,
    in_degree_q25, in_degree_median, in_degree_q75, in_degree_max, locality_mean, top_units,
    locality_top``. In-degree statistics are over connected units.
    """
    if not 0 < top <= 1:
        raise InputError(f"--top {top} must be a fraction in (0, 1]")
    rows = []
    for (run, level, layer, name), group in units.groupby(["run", "level", "layer", "layer_name"], sort=True):
        connected = group[group["in_degree"] > 0]
        degrees = connected["in_degree"].to_numpy(dtype=float)
        q = np.quantile(degrees, [0, 0.25, 0.5, 0.75, 1]) if len(degrees) else np.full(5, np.nan)
        measured = group[group["in_degree"] >= 2]
        count = int(np.ceil(top * len(measured))) if len(measured) else 0
        best = measured.sort_values(["in_degree", "index"], ascending=[False, True]).head(count)
        rows.append(
            {
                "run": run, "level": level, "layer": layer, "layer_name": name, "units": len(group),
                "connected": len(connected),
                "connected_fraction": len(connected) / len(group),
                "in_degree_mean": degrees.mean() if len(degrees) else np.nan,
                "in_degree_min": q[0], "in_degree_q25": q[1], "in_degree_median": q[2],
                "in_degree_q75": q[3], "in_degree_max": q[4],
                "locality_mean": measured["locality"].mean() if len(measured) else np.nan,
                "top_units": count,
                "locality_top": best["locality"].mean() if count else np.nan,
            }
        )
    frame = pd.DataFrame(rows)
    return frame.astype({"in_degree_min": "Int64", "in_degree_max": "Int64"}) if rows else frame  # counts


# -- displacement histograms -----------------------------------------------------------------------
def displacements(
    checkpoint: Checkpoint,
    layers: Sequence[int] | None = None,
    degree_bins: Sequence[int] | None = None,
    within_channels: bool = True,
) -> pd.DataFrame:
    """Histograms of the displacements between pairs of input neurons of a unit, summed over units.

    Every ordered pair ``i ≠ j`` of a unit's receptive field adds one to ``(dx, dy)``; same-channel and
    cross-channel pairs go to separate histograms (``S^sc`` and ``S^dc`` of the study). ``expected`` is the
    exact count for random receptive fields of the same sizes: ``Σ_units k(k−1)/(N(N−1))`` times the number
    of ordered pairs of distinct input neurons at that displacement and channel relation. With
    ``degree_bins`` (increasing in-degree edges, e.g. ``[2, 10, 100]``) units are summed per bin
    ``[lo, hi)`` (the last bin open-ended); units outside every bin are left out.

    Columns: ``run, level, layer, layer_name, [in_degree_bin,] same_channel, dy, dx, count, expected``.

    Example::

        >>> hist = displacements(ckpt, layers=[1])                         # doctest: +SKIP
        >>> hist[hist.same_channel].pivot(index="dy", columns="dx", values="count")  # doctest: +SKIP
    """
    if degree_bins is not None:
        edges = np.asarray(sorted(set(int(edge) for edge in degree_bins)), dtype=np.int64)
        if len(edges) == 0 or edges[0] < 0:
            raise InputError("--degree-bins must be non-negative in-degree edges, e.g. 2,10,100")
    frames = []
    for layer in check_layers(checkpoint, layers):
        grid = pixels(checkpoint, layer)
        shape = grid.shape
        _, height, width = shape
        dy, dx = _displacement_grid(height, width)
        pairs = pixel_pairs(height, width)
        distinct = pairs.copy()
        distinct[height - 1, width - 1] = 0.0
        field = receptive_fields(checkpoint, layer)
        k = np.asarray(field.sum(axis=1)).ravel().astype(np.int64)
        m = _channels_reached(grid, field)
        if degree_bins is None:
            labels, bin_of = ["all"], np.zeros(len(k), dtype=np.int64)
        else:
            bounds = list(edges) + [None]
            labels = [f"[{lo},{hi})" if hi is not None else f"[{lo},)" for lo, hi in zip(bounds, bounds[1:])]
            bin_of = np.searchsorted(edges, k, side="right") - 1
        total_spectrum = np.zeros((len(labels), 2 * height, width + 1))
        same_spectrum = np.zeros_like(total_spectrum)
        for rows in _chunks(field.shape[0], field.shape[1] * 4):
            total, same = _spectra(field, shape, rows)
            where = bin_of[rows]
            keep = where >= 0
            np.add.at(total_spectrum, where[keep], total[keep])
            np.add.at(same_spectrum, where[keep], same[keep])
        probability, m_null = _null_pairs(k, m, shape, within_channels)
        for b, label in enumerate(labels):
            members = bin_of == b
            total = _unshift(np.rint(np.fft.irfft2(total_spectrum[b], s=(2 * height, 2 * width))), height, width)
            same = _unshift(np.rint(np.fft.irfft2(same_spectrum[b], s=(2 * height, 2 * width))), height, width)
            same[height - 1, width - 1] -= k[members].sum()  # the pairs i = i
            cross = total - same - np.where((dy == 0) & (dx == 0), k[members].sum(), 0)
            p, mm = probability[members], m_null[members]
            expected_same = distinct * float((p * mm).sum())
            expected_cross = pairs * float((p * mm * (mm - 1)).sum())
            for is_same, count, expected in ((True, same, expected_same), (False, cross, expected_cross)):
                frame = pd.DataFrame(
                    {
                        "run": checkpoint.run,
                        "level": checkpoint.level,
                        "layer": layer,
                        "layer_name": checkpoint.layers[layer].name,
                        "in_degree_bin": label,
                        "same_channel": is_same,
                        "dy": dy.ravel(),
                        "dx": dx.ravel(),
                        "count": count.ravel().astype(np.int64),
                        "expected": expected.ravel(),
                    }
                )
                frames.append(frame)
    result = pd.concat(frames, ignore_index=True)
    return result if degree_bins is not None else result.drop(columns="in_degree_bin")


# -- pixel map -------------------------------------------------------------------------------------
def pixel_out_degree(checkpoint: Checkpoint, layers: Sequence[int | str] | None = None) -> pd.DataFrame:
    """Per pixel neuron (``channel, y, x``): how many units of the layer still reach it (``out_degree``).

    Dead pixels (border pixels of MNIST, say) show up as 0. Columns: ``run, level, layer, layer_name,
    channel, y, x, out_degree``; the first layer that reads pixels by default.
    """
    frames = []
    for layer in check_layers(checkpoint, layers, every=False):
        grid = pixels(checkpoint, layer)
        degree = np.asarray(receptive_fields(checkpoint, layer).sum(axis=0)).ravel().astype(np.int64)
        frames.append(
            pd.DataFrame(
                {"run": checkpoint.run, "level": checkpoint.level, "layer": layer,
                 "layer_name": checkpoint.layers[layer].name,
                 "channel": grid.channel, "y": grid.y, "x": grid.x, "out_degree": degree}
            )
        )
    return pd.concat(frames, ignore_index=True)


# -- translation structure -------------------------------------------------------------------------
def translation_groups(
    checkpoint: Checkpoint,
    layers: Sequence[int | str] | None = None,
    min_degree: int = 2,
    min_size: int = 2,
    threshold: float = 1.0,
) -> pd.DataFrame:
    """Groups of units whose receptive fields are the same shape up to a spatial shift.

    The "similar patterns at different locations" of the study, measured. With ``threshold = 1`` (the
    default) the match is exact and cheap: a mask is moved so that its bounding box starts at ``(0, 0)``
    (channels stay), which keeps the order of its flattened indices, so two units are one shape up to a
    shift exactly when these canonical index lists agree. With ``threshold < 1`` two units are linked
    when the maximal normalised cross-correlation of their masks over all shifts,
    ``max_s |A ∩ (B + s)| / sqrt(|A| |B|)``, reaches the threshold (by FFT, for every pair of units of
    compatible sizes: quadratic in the units), and groups are the connected components of the links.
    Units reaching fewer than ``min_degree`` inputs are left out (every single pixel is a shift of every
    other); groups smaller than ``min_size`` are not reported.

    Columns: ``run, level, layer, layer_name, pattern`` (the group's number, 0 = largest; not a neuron group),
    ``size``, ``in_degree``, ``index`` (the unit), ``shift_x, shift_y`` (offset of its bounding box from that
    of the group's first unit: the shift, for exact groups), ``x0, y0`` (its bounding-box corner).

    Example::

        >>> groups = translation_groups(ckpt)                                    # doctest: +SKIP
        >>> groups.drop_duplicates(["layer", "pattern"])[["layer", "pattern", "size"]]  # doctest: +SKIP
    """
    if not 0 < threshold <= 1:
        raise InputError(f"--threshold {threshold} must be in (0, 1] (1 = exactly the same shape)")
    frames = []
    for layer in check_layers(checkpoint, layers, every=False):
        grid = pixels(checkpoint, layer)
        shape = grid.shape
        y_of, x_of = grid.y.astype(np.int64), grid.x.astype(np.int64)
        field = receptive_fields(checkpoint, layer)
        k = np.diff(field.indptr)
        units = np.flatnonzero(k >= max(1, min_degree))
        if len(units) == 0:
            continue
        sub = field[units]
        sub.sort_indices()
        y0 = np.minimum.reduceat(y_of[sub.indices], sub.indptr[:-1])
        x0 = np.minimum.reduceat(x_of[sub.indices], sub.indptr[:-1])
        if threshold >= 1:
            labels = _same_shapes(sub, y0 * shape[2] + x0)
        else:
            labels = _similar_shapes(sub, shape, k[units], threshold)
        sizes = np.bincount(labels)
        groups = [np.flatnonzero(labels == label) for label in np.flatnonzero(sizes >= min_size)]
        groups.sort(key=lambda members: (-len(members), members[0]))
        for number, members in enumerate(groups):
            frames.append(
                pd.DataFrame(
                    {
                        "run": checkpoint.run, "level": checkpoint.level, "layer": layer,
                        "layer_name": checkpoint.layers[layer].name, "pattern": number,
                        "size": len(members), "in_degree": k[units[members]].astype(np.int64),
                        "index": units[members], "shift_x": x0[members] - x0[members[0]],
                        "shift_y": y0[members] - y0[members[0]], "x0": x0[members], "y0": y0[members],
                    }
                )
            )
    columns = ["run", "level", "layer", "layer_name", "pattern", "size", "in_degree", "index", "shift_x", "shift_y", "x0", "y0"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _same_shapes(masks: sp.csr_matrix, corner: np.ndarray) -> np.ndarray:
    """A label per row: rows get the same label when their index lists agree after subtracting ``corner``."""
    canonical = masks.indices.astype(np.int64) - np.repeat(corner, np.diff(masks.indptr))
    labels: dict[bytes, int] = {}
    return np.array(
        [
            labels.setdefault(canonical[masks.indptr[i]: masks.indptr[i + 1]].tobytes(), len(labels))
            for i in range(masks.shape[0])  # one dictionary look-up per unit
        ],
        dtype=np.int64,
    )


def _similar_shapes(masks: sp.csr_matrix, shape, k: np.ndarray, threshold: float) -> np.ndarray:
    """A label per row: connected components of "max normalised cross-correlation >= threshold"."""
    from scipy.sparse.csgraph import connected_components

    channels, height, width = shape
    size = (2 * height, 2 * width)
    spectra = np.fft.rfft2(masks.toarray().reshape(-1, channels, height, width), s=size).astype(np.complex64)
    k = k.astype(np.float64)
    first, second = [], []
    for i in range(len(k) - 1):  # one batch of FFT products per unit
        # overlap <= min(k_i, k_j), so only sizes within a factor threshold^2 can reach the threshold
        candidates = i + 1 + np.flatnonzero(np.minimum(k[i + 1:], k[i]) >= threshold * np.sqrt(k[i] * k[i + 1:]))
        for batch in np.array_split(candidates, max(1, len(candidates) * channels * size[0] * size[1] // CHUNK_VALUES)):
            if len(batch) == 0:
                continue
            product = (np.conj(spectra[i])[None] * spectra[batch]).sum(axis=1)
            overlap = np.rint(np.fft.irfft2(product, s=size).max(axis=(1, 2)))
            linked = batch[overlap >= threshold * np.sqrt(k[i] * k[batch]) - 1e-9]
            first.extend([i] * len(linked))
            second.extend(linked.tolist())
    graph = sp.csr_matrix((np.ones(len(first)), (first, second)), shape=(len(k), len(k)))
    return connected_components(graph, directed=False)[1]


# -- images for plots ------------------------------------------------------------------------------
def unit_images(checkpoint: Checkpoint, layer: int, units: Sequence[int], weighted: bool = False) -> np.ndarray:
    """The receptive fields of ``units`` as ``[units, C, H, W]`` arrays (0/1, or summed path weights)."""
    channels, height, width = pixels(checkpoint, layer).shape
    field = receptive_fields(checkpoint, layer, weighted=weighted)
    return field[np.asarray(units, dtype=np.int64)].toarray().reshape(-1, channels, height, width)
