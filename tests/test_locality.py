"""Locality of pruned masks: hand-made patches (closed forms), brute force on small random masks, the CLI."""
from __future__ import annotations

import io
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import netarchive
from netarchive.analysis import locality as loc
from netarchive.cli import cli
from netarchive.errors import InputError
from netarchive.model import Checkpoint, Layer
from tests.conftest import random_checkpoint


def first_layer(masks: np.ndarray, run="r", level=0, more=()) -> Checkpoint:
    """A checkpoint whose first layer has one unit per mask ``[units, C, H, W]`` (weights 1 where the mask is)."""
    units, channels, height, width = masks.shape
    layer = Layer.from_dense("fc1.weight", masks.reshape(units, -1).astype(np.float32))
    return Checkpoint(run, level, (layer, *more), input_shape=(channels, height, width))


def patch(shape, y, x, size=3, channel=0):
    mask = np.zeros(shape)
    mask[channel, y: y + size, x: x + size] = 1
    return mask


# -- brute force -----------------------------------------------------------------------------------
def brute_unit(coordinates):
    """Per-unit statistics by loops over the unit's input neurons ``(c, y, x)``."""
    points = np.asarray(coordinates, dtype=float)
    k = len(points)
    cy, cx = points[:, 1].mean(), points[:, 2].mean()
    spread = math.sqrt(np.mean((points[:, 1] - cy) ** 2 + (points[:, 2] - cx) ** 2))
    pairs = [math.dist(a[1:], b[1:]) for a, b in itertools.combinations(points, 2)]
    return k, cx, cy, spread, (np.mean(pairs) if pairs else np.nan)


def brute_histogram(units, shape, within_channels=True):
    """Observed and expected displacement counts by loops over ordered pairs (expected: over all N(N−1) pairs)."""
    channels, height, width = shape
    observed, expected = {}, {}
    for coordinates in units:
        k = len(coordinates)
        for (c1, y1, x1), (c2, y2, x2) in itertools.permutations(coordinates, 2):
            key = (c1 == c2, y2 - y1, x2 - x1)
            observed[key] = observed.get(key, 0) + 1
        reached = sorted({c for c, _, _ in coordinates}) if within_channels else range(channels)
        population = [(c, y, x) for c in reached for y in range(height) for x in range(width)]
        n = len(population)
        if k < 2:
            continue
        for (c1, y1, x1), (c2, y2, x2) in itertools.permutations(population, 2):
            key = (c1 == c2, y2 - y1, x2 - x1)
            expected[key] = expected.get(key, 0) + k * (k - 1) / (n * (n - 1))
    return observed, expected


def as_dict(frame, column):
    nonzero = frame[frame[column] != 0]
    return {(bool(s), int(dy), int(dx)): v for s, dy, dx, v in zip(nonzero.same_channel, nonzero.dy, nonzero.dx, nonzero[column])}


def mask_coordinates(mask):
    return [tuple(int(v) for v in p) for p in np.argwhere(mask)]


# -- hand-made 3x3 patches ----------------------------------------------------------------------------
def test_three_by_three_patches_closed_form():
    shape = (1, 7, 8)
    masks = np.stack([patch(shape, 0, 0), patch(shape, 2, 3), patch(shape, 4, 5)])
    units = loc.unit_locality(first_layer(masks))
    mean_pair = (24 + 12 * math.sqrt(2) + 8 * math.sqrt(5)) / 36  # 12 at 1, 6 at 2, 8 at √2, 8 at √5, 2 at 2√2
    pixels = [(y, x) for y in range(7) for x in range(8)]
    random_pair = np.mean([math.dist(a, b) for a, b in itertools.permutations(pixels, 2)])
    assert units.in_degree.tolist() == [9, 9, 9]
    assert units.centroid_x.tolist() == [1, 4, 6] and units.centroid_y.tolist() == [1, 3, 5]
    assert np.allclose(units.spread, math.sqrt(12 / 9))
    assert np.allclose(units.mean_pair_distance, mean_pair)
    assert np.allclose(units.expected_pair_distance, random_pair)
    assert np.allclose(units.locality, random_pair / mean_pair)
    assert units.channels.tolist() == [1, 1, 1]


def test_three_by_three_histogram_closed_form():
    shape = (1, 7, 8)
    masks = np.stack([patch(shape, 0, 0), patch(shape, 4, 5)])
    hist = loc.displacements(first_layer(masks))
    same = hist[hist.same_channel]
    closed = np.where((same.dy.abs() <= 2) & (same.dx.abs() <= 2), 2 * (3 - same.dx.abs()) * (3 - same.dy.abs()), 0)
    closed[(same.dx == 0).to_numpy() & (same.dy == 0).to_numpy()] = 0
    assert same["count"].tolist() == closed.tolist()
    assert (hist[~hist.same_channel]["count"] == 0).all() and (hist[~hist.same_channel].expected == 0).all()
    # expected: 2 units × 9·8/(56·55) × (7−|dy|)(8−|dx|)
    factor = 2 * 72 / (56 * 55)
    assert np.allclose(same.expected, factor * np.where((same.dx == 0) & (same.dy == 0), 0, (7 - same.dy.abs()) * (8 - same.dx.abs())))
    assert same["count"].sum() == pytest.approx(same.expected.sum()) == 2 * 72


def test_empty_and_single_pixel_units():
    shape = (1, 4, 4)
    masks = np.zeros((3, *shape))
    masks[1, 0, 2, 3] = 1
    masks[2, 0, 0, 0] = masks[2, 0, 3, 3] = 1
    units = loc.unit_locality(first_layer(masks))
    assert units.in_degree.tolist() == [0, 1, 2]
    assert np.isnan(units.centroid_x[0]) and units.centroid_x[1] == 3 and units.spread[1] == 0
    assert np.isnan(units.locality[:2]).all() and units.mean_pair_distance[2] == pytest.approx(math.sqrt(18))
    summary = loc.locality_summary(units)
    assert summary.connected.tolist() == [2] and summary.connected_fraction.tolist() == [pytest.approx(2 / 3)]


# -- random masks -----------------------------------------------------------------------------------
def test_random_masks_match_brute_force():
    rng = np.random.default_rng(3)
    shape = (2, 4, 5)
    masks = rng.random((6, *shape)) < 0.3
    masks[0] = False
    checkpoint = first_layer(masks)
    units = loc.unit_locality(checkpoint)
    for unit, mask in enumerate(masks):
        coordinates = mask_coordinates(mask)
        if len(coordinates) < 2:
            continue
        k, cx, cy, spread, mean_pair = brute_unit(coordinates)
        row = units.iloc[unit]
        assert (row.in_degree, row.channels) == (k, len({c for c, _, _ in coordinates}))
        assert np.allclose([row.centroid_x, row.centroid_y, row.spread, row.mean_pair_distance], [cx, cy, spread, mean_pair])
    for within in (True, False):
        hist = loc.displacements(checkpoint, within_channels=within)
        observed, expected = brute_histogram([mask_coordinates(m) for m in masks], shape, within)
        assert as_dict(hist, "count") == observed
        got = as_dict(hist, "expected")
        assert got.keys() == expected.keys() and all(np.isclose(got[key], expected[key]) for key in got)


def test_random_masks_are_not_local():
    rng = np.random.default_rng(0)
    shape = (1, 16, 16)
    checkpoint = first_layer(rng.random((300, *shape)) < 0.2)
    units = loc.unit_locality(checkpoint)
    assert units.locality.mean() == pytest.approx(1.0, abs=0.01)
    hist = loc.displacements(checkpoint)
    same = hist[hist.same_channel]
    assert same["count"].sum() == pytest.approx(same.expected.sum())
    # total variation distance between the observed and expected displacement distributions
    assert 0.5 * np.abs(same["count"] - same.expected).sum() / same["count"].sum() < 0.03


def test_two_channels():
    shape = (2, 4, 4)
    mask = np.zeros(shape)
    mask[0, 1, 1] = mask[1, 1, 2] = mask[1, 1, 1] = 1
    checkpoint = first_layer(mask[None])
    row = loc.unit_locality(checkpoint).iloc[0]
    assert (row.in_degree, row.channels) == (3, 2)
    assert row.mean_pair_distance == pytest.approx((1 + 0 + 1) / 3)
    everywhere = loc.unit_locality(checkpoint, within_channels=False).iloc[0]
    neurons = [(c, y, x) for c in range(2) for y in range(4) for x in range(4)]
    all_pairs = np.mean([math.dist(a[1:], b[1:]) for a, b in itertools.permutations(neurons, 2)])
    pixels = [(y, x) for y in range(4) for x in range(4)]
    pixel_pairs = np.mean([math.dist(a, b) for a, b in itertools.permutations(pixels, 2)])
    assert everywhere.expected_pair_distance == pytest.approx(all_pairs) == pytest.approx(row.expected_pair_distance)
    assert all_pairs < pixel_pairs  # same-pixel cross-channel pairs are at distance 0
    hist = loc.displacements(checkpoint)
    assert as_dict(hist, "count") == {
        (False, 0, 0): 2, (False, 0, 1): 1, (False, 0, -1): 1, (True, 0, 1): 1, (True, 0, -1): 1
    }
    cross = hist[~hist.same_channel]
    assert cross.expected.sum() == pytest.approx(6 * 16 * 16 * 2 / (32 * 31))
    assert hist.expected.sum() == pytest.approx(6)


def test_degree_bins():
    shape = (1, 5, 5)
    masks = np.stack([patch(shape, 0, 0), patch(shape, 1, 1, size=2), patch(shape, 2, 2, size=2)])
    hist = loc.displacements(first_layer(masks), degree_bins=[4, 9])
    totals = hist.groupby("in_degree_bin")["count"].sum()
    assert totals.to_dict() == {"[4,9)": 2 * 12, "[9,)": 72}
    assert hist.groupby("in_degree_bin").expected.sum().to_dict() == pytest.approx({"[4,9)": 24, "[9,)": 72})


# -- deeper layers ----------------------------------------------------------------------------------
def test_two_layer_receptive_field_known():
    shape = (1, 3, 3)
    first = np.zeros((3, 9))
    first[0, [0, 1]] = 1.0
    first[1, [4]] = -2.0
    first[2, [8]] = 1.0
    second = np.array([[0.5, 3.0, 0.0], [0.0, 0.0, 0.0]])
    checkpoint = Checkpoint("r", 0, (Layer.from_dense("a", first), Layer.from_dense("b", second)), input_shape=shape)
    assert loc.receptive_fields(checkpoint, 1).toarray().tolist() == [[1, 1, 0, 0, 1, 0, 0, 0, 0], [0] * 9]
    assert loc.receptive_fields(checkpoint, 1, weighted=True).toarray()[0].tolist() == [0.5, 0.5, 0, 0, 6, 0, 0, 0, 0]
    units = loc.unit_locality(checkpoint, layers=[1])
    assert units.in_degree.tolist() == [3, 0]
    assert units.mean_pair_distance[0] == pytest.approx((1 + math.sqrt(2) + 1) / 3)


def test_deep_receptive_fields_brute_force():
    checkpoint = random_checkpoint([12, 7, 6, 4], density=0.25, seed=5, input_shape=(1, 3, 4))
    for layer in (1, 2, 3):
        reach = [{i} for i in range(12)]
        for current in checkpoint.layers[:layer]:
            following = [set() for _ in range(current.outputs)]
            for s, d in zip(current.src, current.dst):
                following[d] |= reach[s]
            reach = following
        field = loc.receptive_fields(checkpoint, layer - 1).toarray()  # weight layer layer - 1 feeds these units
        assert [set(np.flatnonzero(row)) for row in field] == reach


# -- translations and pixels --------------------------------------------------------------------------
def test_translation_groups_exact():
    shape = (1, 8, 8)
    ell = np.zeros((3, 3))
    ell[:, 0] = ell[2, :] = 1  # an L
    masks = []
    corners = [(0, 0), (5, 5), (2, 4), (4, 1)]
    for y, x in corners:
        mask = np.zeros(shape)
        mask[0, y: y + 3, x: x + 3] = ell
        masks.append(mask)
    masks.insert(2, patch(shape, 1, 1))  # a 3x3 square, and its shift
    masks.append(patch(shape, 5, 0))
    masks.append(np.rot90(masks[0], axes=(1, 2)).copy())  # a rotated L is not a shift
    groups = loc.translation_groups(first_layer(np.stack(masks)))
    ells = groups[groups.pattern == 0]
    assert ells["index"].tolist() == [0, 1, 3, 4] and (ells["size"] == 4).all()
    assert list(zip(ells.shift_y, ells.shift_x)) == [(0, 0), (5, 5), (2, 4), (4, 1)]
    squares = groups[groups.pattern == 1]
    assert squares["index"].tolist() == [2, 5] and squares.shift_y.tolist() == [0, 4]
    assert groups.pattern.max() == 1


def test_translation_groups_approximate():
    shape = (1, 8, 8)
    ell = np.zeros((3, 3))
    ell[:, 0] = ell[2, :] = 1
    masks = []
    for y, x in [(0, 0), (5, 5), (1, 4)]:
        mask = np.zeros(shape)
        mask[0, y: y + 3, x: x + 3] = ell
        masks.append(mask)
    masks[2][0, 3, 6] = 0  # a 4-pixel L: overlap 4 with the others, 4 / sqrt(4 * 5) = 0.894
    masks.append(patch(shape, 4, 0))  # a square: overlap 5 with an L, 5 / sqrt(5 * 9) = 0.745
    checkpoint = first_layer(np.stack(masks))
    assert loc.translation_groups(checkpoint)["index"].tolist() == [0, 1]
    assert loc.translation_groups(checkpoint, threshold=0.9)["index"].tolist() == [0, 1]
    assert loc.translation_groups(checkpoint, threshold=0.85)["index"].tolist() == [0, 1, 2]
    assert loc.translation_groups(checkpoint, threshold=0.7)["index"].tolist() == [0, 1, 2, 3]


def test_translation_similarity_brute_force():
    rng = np.random.default_rng(7)
    shape = (2, 4, 4)
    masks = rng.random((7, *shape)) < 0.3
    masks[1] = np.roll(masks[0], 1, axis=2)
    masks[1][:, :, 0] = masks[0][:, :, 3] = False  # keep the shift exact inside the image
    sets = [set(mask_coordinates(m)) for m in masks]
    for threshold in (0.3, 0.35, 0.4, 0.45, 1.0):
        linked = np.eye(len(sets), dtype=bool)
        for a, b in itertools.combinations(range(len(sets)), 2):
            if len(sets[a]) >= 2 and len(sets[b]) >= 2:
                overlap = max(len(sets[a] & {(c, y + dy, x + dx) for c, y, x in sets[b]}) for dy in range(-3, 4) for dx in range(-3, 4))
                linked[a, b] = linked[b, a] = overlap >= threshold * math.sqrt(len(sets[a]) * len(sets[b])) - 1e-9
        for _ in range(len(sets)):  # transitive closure
            linked = (linked.astype(int) @ linked.astype(int)) > 0
        expected = {frozenset(np.flatnonzero(row)) for row in linked if row.sum() >= 2}
        groups = loc.translation_groups(first_layer(masks), threshold=threshold)
        assert {frozenset(g["index"]) for _, g in groups.groupby("pattern")} == expected


def test_pixel_out_degree():
    shape = (3, 2, 2)
    masks = np.zeros((2, *shape))
    masks[:, 2, 1, 0] = 1
    masks[0, 0, 0, 1] = 1
    pixels = loc.pixel_out_degree(first_layer(masks))
    degree = pixels.set_index(["channel", "y", "x"]).out_degree
    assert degree[(2, 1, 0)] == 2 and degree[(0, 0, 1)] == 1 and degree.sum() == 3


def test_no_input_shape_is_a_clear_error():
    with pytest.raises(InputError, match="set-input-shape"):
        loc.unit_locality(random_checkpoint([4, 2]))


# -- CLI --------------------------------------------------------------------------------------------
def invoke(store, *args):
    result = CliRunner().invoke(cli, ["--store", str(store), *args])
    return result


@pytest.fixture
def stored(store_path):
    rng = np.random.default_rng(1)
    shape = (1, 6, 6)
    masks = np.stack([patch(shape, y, x) for y, x in [(0, 0), (3, 3), (1, 2)]] + [rng.random(shape) < 0.3])
    colour = rng.random((5, 3, 4, 4)) < 0.4
    with netarchive.open(store_path) as archive:
        archive.write(first_layer(masks, run="digits", more=(Layer.from_dense("fc2.weight", rng.normal(size=(2, 4))),)))
        archive.write(first_layer(colour, run="cifar"))
        archive.write(random_checkpoint([9, 3], run="flat"))
    return store_path


def test_cli_queries(stored, tmp_path):
    result = invoke(stored, "query", "locality", "--run", "digits", "--layer", "0", "--format", "json")
    assert result.exit_code == 0, result.output
    frame = pd.read_json(io.StringIO(result.output))
    assert frame.in_degree.tolist()[:3] == [9, 9, 9] and len(frame) == 4
    result = invoke(stored, "query", "locality", "--run", "digits", "--summary", "--format", "csv")
    assert result.exit_code == 0 and result.output.startswith("run,level,layer,layer_name,units")
    out = tmp_path / "hist.parquet"
    assert invoke(stored, "query", "displacements", "--run", "cifar", "--layer", "fc1.weight", "-o", str(out)).exit_code == 0
    assert set(pd.read_parquet(out).columns) >= {"dx", "dy", "same_channel", "count", "expected"}
    result = invoke(stored, "query", "translations", "--run", "digits", "--format", "csv")
    assert result.exit_code == 0 and "digits,0,0,fc1.weight,0,3,9" in result.output
    result = invoke(stored, "query", "pixels", "--run", "cifar", "--format", "csv")
    assert result.exit_code == 0 and len(result.output.splitlines()) == 1 + 48


def test_cli_plots(stored, tmp_path):
    for run in ("digits", "cifar"):
        out = tmp_path / f"{run}.png"
        result = invoke(stored, "plot", "locality", "--run", run, "--units", "4", "-o", str(out))
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 10_000


def test_cli_missing_shape_and_set_input_shape(stored):
    result = invoke(stored, "query", "locality", "--run", "flat")
    assert result.exit_code == 1 and "--input-shape C,H,W" in result.output and "set-input-shape" in result.output
    result = invoke(stored, "set-input-shape", "--run", "flat", "1,3,4")
    assert result.exit_code == 1 and "9 inputs" in result.output
    assert invoke(stored, "set-input-shape", "--run", "flat", "1,3,3").exit_code == 0
    result = invoke(stored, "query", "locality", "--run", "flat", "--format", "csv")
    assert result.exit_code == 0, result.output
    with netarchive.open(stored, read_only=True) as archive:
        assert archive.checkpoint("flat", 0).input_shape == (1, 3, 3)
        neurons = archive.cypher("MATCH (n:Neuron {run: 'flat', `group`: 0}) RETURN n.channel, n.y, n.x ORDER BY n.`index`")
    assert neurons.values.tolist() == [[0, y, x] for y in range(3) for x in range(3)]


# -- convolutional and residual networks ---------------------------------------------------------------
def test_the_linear_layer_after_a_flatten_reads_the_feature_maps_pixels():
    from netarchive.loaders.traced import from_module
    from tests import models
    from tests.test_traced import prune_randomly

    model = prune_randomly(models.cnn(), density=0.3, seed=4)
    net = from_module(model, run="r", level=0, input_shape=(1, 8, 8))  # conv1, conv2, flatten (6, 2, 2), fc
    mask = model.fc.weight.detach().numpy() != 0
    units = loc.unit_locality(net)  # every layer locality applies to: the fc alone
    assert set(units.layer) == {2} and set(units.layer_name) == {"fc.weight"}
    assert units.in_degree.tolist() == mask.sum(axis=1).tolist()
    channel, y, x = np.unravel_index(np.arange(24), (6, 2, 2))  # torch.flatten of the 6 x 2 x 2 feature map
    assert units.centroid_x.to_numpy() == pytest.approx((mask * x).sum(axis=1) / mask.sum(axis=1))
    pixels = loc.pixel_out_degree(net)
    assert pixels[["channel", "y", "x"]].values.tolist() == np.stack([channel, y, x], axis=1).tolist()
    assert pixels.out_degree.tolist() == mask.sum(axis=0).tolist()
    assert loc.unit_images(net, 2, [0]).shape == (1, 6, 2, 2)
    with pytest.raises(InputError, match=r"^locality applies to Linear layers .*: layer 0 \(conv1.weight\) is a convolution$"):
        loc.unit_locality(net, layers=["conv1.weight"])
    with pytest.raises(InputError, match=r"no layer 5 in r/0: give a weight layer's index 0..2 or its tensor name \(conv1.weight, conv2"):
        loc.unit_locality(net, layers=[5])


def test_a_linear_layer_reading_a_residual_addition_is_refused_in_one_line():
    from netarchive.loaders.traced import from_module
    from tests import models

    net = from_module(models.residual_mlp(), run="r", level=0, input_shape=(1, 2, 3))
    assert loc.check_layers(net, None) == [0, 1]  # fc1 reads the pixels, fc2 reads fc1
    with pytest.raises(InputError, match=r"layer 2 \(out.weight\) reads group 'add', which no weight layer makes"):
        loc.receptive_fields(net, 2)
