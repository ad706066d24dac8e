import itertools

import numpy as np
import pytest

from netarchive.analysis.compare import compare_pair, compare_runs, expected_jaccard, somers_d, survival
from netarchive.errors import InputError
from netarchive.model import Checkpoint, Layer
from tests.conftest import random_checkpoint


def metrics(table, layer=0):
    return table[table.layer == layer].set_index("metric").value.to_dict()


def test_hand_computed_pair():
    a = Checkpoint("a", 2, (Layer.from_dense("fc", np.array([[1.0, 2.0, 0.0], [0.0, 3.0, 4.0], [5.0, 0.0, 0.0]])),))
    b = Checkpoint("b", 2, (Layer.from_dense("fc", np.array([[2.0, 0.0, 0.0], [0.0, 5.0, 9.0], [1.0, 1.0, 0.0]])),))
    m = metrics(compare_pair(a, b))
    assert (m["edges_a"], m["edges_b"], m["shared"]) == (5, 5, 4)
    assert m["jaccard"] == 4 / 6
    assert m["weight_correlation"] == pytest.approx(np.corrcoef([1, 3, 4, 5], [2, 5, 9, 1])[0, 1])
    assert m["in_degree_correlation"] == pytest.approx(np.corrcoef([2, 2, 1], [1, 2, 2])[0, 1])
    assert m["out_degree_correlation"] == pytest.approx(1.0)


def test_expected_jaccard_by_enumeration():
    positions, size_a, size_b = 6, 2, 3
    universe = range(positions)
    values = [len(set(x) & set(y)) / len(set(x) | set(y))
              for x in itertools.combinations(universe, size_a) for y in itertools.combinations(universe, size_b)]
    assert expected_jaccard(size_a, size_b, positions) == pytest.approx(np.mean(values), abs=1e-12)


@pytest.mark.parametrize("size_a, size_b, positions", [(5000, 4000, 9000), (200_000, 150_000, 300_000), (30, 20, 60)])
def test_expected_jaccard_against_scipys_hypergeometric(size_a, size_b, positions):
    from scipy.stats import hypergeom

    overlap = np.arange(max(0, size_a + size_b - positions), min(size_a, size_b) + 1)
    expected = (hypergeom.pmf(overlap, positions, size_a, size_b) * overlap / (size_a + size_b - overlap)).sum()
    assert expected_jaccard(size_a, size_b, positions) == pytest.approx(expected, rel=1e-9)


def test_random_masks_match_their_expectation():
    table = compare_runs([random_checkpoint([60, 50], density=0.3, seed=s, run=f"s{s}") for s in range(4)])
    assert list(table.columns) == ["run_a", "run_b", "level", "layer", "layer_name", "metric", "value"]
    jaccard = table[table.metric == "jaccard"].value.mean()
    expected = table[table.metric == "jaccard_expected"].value.iloc[0]
    assert len(table[table.metric == "jaccard"]) == 6 and jaccard == pytest.approx(expected, abs=0.02)


def test_different_architectures_are_refused():
    with pytest.raises(InputError, match="do not have the same architecture"):
        compare_pair(random_checkpoint([4, 3]), random_checkpoint([4, 2], run="b"))


def test_survival_of_magnitude_pruning():
    dense = np.arange(1, 13, dtype=float).reshape(3, 4) * np.array([1, -1, 1, -1])
    pruned = np.where(np.abs(dense) > 6, dense, 0)  # the six strongest survive
    random_pruned = np.where(np.arange(12).reshape(3, 4) % 2 == 0, dense, 0)
    levels = [Checkpoint("r", l, (Layer.from_dense("fc", w),)) for l, w in enumerate([dense, pruned])]
    row = survival(levels).iloc[0]
    assert (row.edges_a, row.edges_b, row.kept, row.kept_fraction) == (12, 6, 6, 0.5)
    assert row.strongest_kept_fraction == 1.0 and row.rank_correlation == 1.0
    other = survival([levels[0], Checkpoint("r", 1, (Layer.from_dense("fc", random_pruned),))]).iloc[0]
    assert other.strongest_kept_fraction == 0.5


def test_somers_d_against_pairs():
    rng = np.random.default_rng(0)
    score, positive = rng.integers(0, 5, 40).astype(float), rng.random(40) < 0.4
    pairs = [np.sign(p - n) for p in score[positive] for n in score[~positive]]
    assert somers_d(score, positive) == pytest.approx(np.mean(pairs))


def test_compare_and_survival_commands(tmp_path):
    import json

    from click.testing import CliRunner

    import netarchive
    from netarchive.cli import cli

    with netarchive.open(tmp_path / "a") as archive:
        for run in ("s0", "s1"):
            for level in (0, 1):
                archive.write(random_checkpoint([8, 6, 4], density=0.8 - 0.3 * level, seed=10 * int(run[1]) + level, run=run, level=level))
    store = ["--store", str(tmp_path / "a")]
    result = CliRunner().invoke(cli, [*store, "query", "compare", "--runs", "s0,s1", "--levels", "--format", "json"])
    rows = json.loads(result.output)
    assert {(r["level"], r["layer"]) for r in rows} == {(0, 0), (0, 1), (1, 0), (1, 1)} and len(rows) == 4 * 8
    result = CliRunner().invoke(cli, [*store, "query", "survival", "--run", "s0", "--format", "json"])
    assert [(r["level_a"], r["level_b"], r["layer"]) for r in json.loads(result.output)] == [(0, 1, 0), (0, 1, 1)]
    bad = CliRunner().invoke(cli, [*store, "query", "compare", "--runs", "s0,s1", "--level", "7"])
    assert bad.exit_code == 1 and "level 7 is not archived for every run" in bad.output
    bad = CliRunner().invoke(cli, [*store, "query", "compare", "--runs", "s0,nope"])
    assert bad.exit_code == 1 and "no run named 'nope'" in bad.output


def conv_checkpoint(kernel, run="a", level=1):
    from netarchive.model import Conv, Group, Op

    conv = Layer.from_dense("conv.weight", np.asarray(kernel, dtype=float), conv=Conv(kernel=(2, 2), in_spatial=(3, 3)),
                            source=0, target=1)
    return Checkpoint(run, level, (conv,), groups=(Group("input", 1, (3, 3)), Group("conv", 2, (2, 2))),
                      program=(Op("input"), Op("layer", (0,), 1, 0)))


def test_kernel_weights_are_matched_by_their_offset_too():
    # one input channel, two output channels, 2x2 kernels: a keeps (0,0,0,0) (0,0,1,1) (1,0,0,1); b keeps
    # (0,0,0,0) (0,0,0,1) (1,0,0,1): the same channel pairs, one kernel weight at another offset
    a = np.zeros((2, 1, 2, 2))
    a[0, 0, 0, 0], a[0, 0, 1, 1], a[1, 0, 0, 1] = 1.0, 2.0, 3.0
    b = np.zeros((2, 1, 2, 2))
    b[0, 0, 0, 0], b[0, 0, 0, 1], b[1, 0, 0, 1] = 1.5, 2.5, 3.5
    table = compare_pair(conv_checkpoint(a), conv_checkpoint(b, run="b"))
    m = metrics(table)
    assert (m["edges_a"], m["edges_b"], m["shared"], m["jaccard"]) == (3, 3, 2, 2 / 4)
    assert m["jaccard_expected"] == pytest.approx(expected_jaccard(3, 3, 8))  # 8 kernel weights in all
    assert m["weight_correlation"] == pytest.approx(1.0)  # (1, 3) against (1.5, 3.5)
    assert set(table.layer_name) == {"conv.weight"}
    row = survival([conv_checkpoint(a, level=0), conv_checkpoint(np.where(np.abs(a) > 1.5, a, 0), level=1)]).iloc[0]
    assert (row.layer, row.layer_name, row.edges_a, row.kept, row.strongest_kept_fraction) == (0, "conv.weight", 3, 2, 1.0)
    linear = Checkpoint("c", 1, (Layer.from_dense("fc", np.ones((2, 1))),))  # the same group sizes, 1 and 2
    with pytest.raises(InputError, match=r"their layers conv.weight \(2, 1, 2, 2\) and fc \(2, 1\) differ"):
        compare_pair(conv_checkpoint(a), linear)
