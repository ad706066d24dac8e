"""Components, percolation curves, thresholds, degrees: science.md oracles, brute force against networkx, CLI."""
from __future__ import annotations

import json
import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import netarchive
from netarchive.analysis import components as C
from netarchive.analysis import degrees as D
from netarchive.analysis import percolation as P
from netarchive.cli import cli
from netarchive.errors import InputError
from netarchive.model import Checkpoint, Layer
from tests.conftest import random_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # powerlaw's own use of .sigma


def dense(widths, seed=0, run="r", level=0):
    return random_checkpoint(widths, density=1.0, seed=seed, run=run, level=level)


def chain(weights):
    """The path 0-1-...-n as a layered net of width-1 layers, edge i of weight weights[i]."""
    return Checkpoint("r", 0, tuple(Layer.from_dense(f"fc{i}", np.array([[w]])) for i, w in enumerate(weights)))


# --- brute force ----------------------------------------------------------------------------------------

def brute_state(neurons, src, dst, order, n):
    """S1, S2, components, mean finite-cluster size after the first n edges of ``order`` (networkx)."""
    graph = nx.Graph()
    graph.add_nodes_from(range(neurons))
    graph.add_edges_from(zip(src[order[:n]].tolist(), dst[order[:n]].tolist()))
    sizes = sorted((len(c) for c in nx.connected_components(graph)), reverse=True)
    s1, s2 = sizes[0], (sizes[1] if len(sizes) > 1 else 0)
    finite = neurons - s1
    mean = (sum(s * s for s in sizes) - s1 * s1) / finite if finite else 0.0
    return {"giant_fraction": s1 / neurons, "second_fraction": s2 / neurons, "components": len(sizes),
            "mean_cluster_size": mean}


def brute_curve(checkpoint, order, sample, edges_kept):
    src, dst, _, _ = checkpoint.edge_list()
    sequence = P.edge_order(checkpoint, order, seed=7, sample=sample)
    rows = [brute_state(checkpoint.neurons, src, dst, sequence, int(n)) for n in edges_kept]
    return pd.DataFrame(rows)


# --- orders and points ----------------------------------------------------------------------------------

def test_kept_points_round_half_up_and_refuse_fewer_than_two():
    kept, edges = P.kept_points(3, 5)
    assert kept.tolist() == [0, 0.5, 1] and edges.tolist() == [0, 3, 5]
    assert P.kept_points(101, 6_270_208)[1][-1] == 6_270_208
    for bad in (1, 0, -3, 2.5):
        with pytest.raises(InputError, match="--points"):
            P.kept_points(bad, 10)


def test_edge_order_is_a_permutation_and_independent_of_storage_order():
    checkpoint = random_checkpoint([6, 5, 4], density=0.7, seed=3)
    rng = np.random.default_rng(0)
    shuffled = []
    for layer in checkpoint.layers:
        p = rng.permutation(layer.edges)
        shuffled.append(Layer(layer.name, layer.inputs, layer.outputs, layer.src[p], layer.dst[p], layer.w[p]))
    other = Checkpoint("r", 0, tuple(shuffled))
    for order in P.ORDERS:
        a, b = P.edge_order(checkpoint, order), P.edge_order(other, order)
        assert sorted(a.tolist()) == list(range(checkpoint.edges))
        sa, da, _, _ = checkpoint.edge_list()
        sb, db, _, _ = other.edge_list()
        assert list(zip(sa[a], da[a])) == list(zip(sb[b], db[b]))
    w = np.abs(checkpoint.edge_list()[2])
    assert np.all(np.diff(w[P.edge_order(checkpoint, "descending")]) <= 0)
    assert np.all(np.diff(w[P.edge_order(checkpoint, "ascending")]) >= 0)
    assert not np.array_equal(P.edge_order(checkpoint, "random", sample=0), P.edge_order(checkpoint, "random", sample=1))
    assert np.array_equal(P.edge_order(checkpoint, "random", seed=4), P.edge_order(checkpoint, "random", seed=4))
    with pytest.raises(InputError, match="unknown order"):
        P.order_key(checkpoint, "sideways")


# --- oracles (science.md) -------------------------------------------------------------------------------

def test_six_node_oracle():
    # edges (0,1), (2,3), (4,5), (1,2), (3,4) in this order = descending weights along the path
    curve = P.percolation(chain([5.0, 2.0, 4.0, 1.0, 3.0]), "descending", points=6)
    assert curve["edges_kept"].tolist() == [0, 1, 2, 3, 4, 5]
    assert (curve["giant_fraction"] * 6).round(9).tolist() == [1, 2, 2, 2, 4, 6]
    assert (curve["second_fraction"] * 6).round(9).tolist() == [1, 1, 2, 2, 2, 0]
    assert curve["mean_cluster_size"].tolist() == [1, 1, 1.5, 2, 2, 0]
    assert curve["components"].tolist() == [6, 5, 4, 3, 2, 1]
    ascending = P.percolation(chain([1.0, 4.0, 2.0, 5.0, 3.0]), "ascending", points=6)
    assert (ascending["giant_fraction"] * 6).round(9).tolist() == [1, 2, 2, 2, 4, 6]


def test_triangle_canonical_oracle():
    merges = P.merges(3, np.array([0, 1, 0]), np.array([1, 2, 2]), np.array([0.0, 1.0, 2.0]))
    assert merges.s1.tolist() == [1, 2, 3] and merges.position.tolist() == [0, 1, 2]
    assert (merges.s1[merges.state(np.arange(4))]).tolist() == [1, 2, 3, 3]
    canonical = P.canonical_curve(merges, [0.0, 0.5, 1.0, 0.3])
    assert canonical["giant_fraction"][1] * 3 == pytest.approx(19 / 8, abs=1e-12)
    assert canonical["giant_fraction"][[0, 2]].tolist() == pytest.approx([1 / 3, 1])
    p = 0.3
    expected = (1 - p) ** 3 + 6 * p * (1 - p) ** 2 + 9 * p * p * (1 - p) + 3 * p**3
    assert canonical["giant_fraction"][3] * 3 == pytest.approx(expected, abs=1e-12)


def test_canonical_equals_binomial_sum_over_brute_force():
    checkpoint = random_checkpoint([5, 4, 3], density=0.8, seed=2)
    edges = checkpoint.edges
    p = np.array([0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
    frame = P.percolation(checkpoint, "random", samples=2, seed=7, canonical=True, kept=p)
    from scipy.stats import binom

    micro = [brute_curve(checkpoint, "random", s, np.arange(edges + 1)) for s in range(2)]
    for name in P.QUANTITIES:
        per_sample = np.array([[np.dot(binom.pmf(np.arange(edges + 1), edges, q), m[name]) for q in p] for m in micro])
        assert frame[name].to_numpy() == pytest.approx(per_sample.mean(axis=0), abs=1e-9)
        assert frame[f"{name}_std"].to_numpy() == pytest.approx(per_sample.std(axis=0, ddof=1), abs=1e-9)
    assert frame["mean_edges"].tolist() == pytest.approx((p * edges).tolist())


def test_canonical_window_matches_the_full_binomial_sum():
    checkpoint = random_checkpoint([40, 30, 30, 20], density=0.6, seed=9)
    merges = P.checkpoint_merges(checkpoint, "random", seed=3)
    edges = checkpoint.edges
    n = np.arange(edges + 1)
    q = merges.quantities(merges.state(n))
    p = np.array([0.001, 0.01, 0.02, 0.05, 0.2, 0.6])
    from scipy.stats import binom

    got = P.canonical_curve(merges, p)
    for name in P.QUANTITIES:
        expected = [np.dot(binom.pmf(n, edges, x), q[name]) for x in p]
        assert got[name] == pytest.approx(expected, rel=1e-9, abs=1e-12), name


@pytest.mark.parametrize("widths, molloy_reed, branching, seed", [
    ([4, 4, 4], 1 / 5, 1 / (4 * math.sqrt(2)), 1 / 7),
    ([2, 2], 1.0, 0.5, float("nan")),
    ([100] * 7, 3 / 547, None, 1 / 199),
])
def test_threshold_oracles(widths, molloy_reed, branching, seed):
    row = P.thresholds(dense(widths), samples=2).iloc[0]
    assert row["p_c_molloy_reed"] == pytest.approx(molloy_reed, rel=1e-12)
    if branching is not None:
        assert row["p_c_branching"] == pytest.approx(branching, rel=1e-12)
    assert row["p_c_seed"] == pytest.approx(seed, rel=1e-12, nan_ok=True)
    assert 0 <= row["p_c_measured"] <= 1


def test_dense_mnist_fcn_moments_and_thresholds():
    checkpoint = dense([784] + [100] * 5 + [10])
    k1, k2 = D.degree_moments(checkpoint)
    assert k1 == pytest.approx(119400 / 647, rel=1e-12) and k2 == pytest.approx(49647800 / 647, rel=1e-12)
    row = P.thresholds(checkpoint, samples=10, seed=0).iloc[0]
    assert row["p_c_molloy_reed"] == pytest.approx(0.0024107, abs=5e-8)
    assert row["p_c_branching"] == pytest.approx(0.0033360, abs=5e-8)
    assert row["p_c_seed"] == pytest.approx(0.0050251, abs=5e-8)
    # science.md: ≈ 0.00385 (finite size); the peak of 10 orderings wanders by ±0.0003 from seed to seed
    assert row["p_c_measured"] == pytest.approx(0.00385, abs=5e-4)


def test_branching_uses_own_edges_of_a_pruned_checkpoint():
    checkpoint = random_checkpoint([6, 5, 4], density=0.5, seed=1)
    e = [layer.edges for layer in checkpoint.layers]
    k = np.array([[0, e[0] / math.sqrt(30), 0], [e[0] / math.sqrt(30), 0, e[1] / math.sqrt(20)], [0, e[1] / math.sqrt(20), 0]])
    assert P.thresholds(checkpoint, samples=1).iloc[0]["p_c_branching"] == pytest.approx(1 / np.linalg.eigvalsh(k)[-1])


# --- brute force against networkx -----------------------------------------------------------------------

@pytest.mark.parametrize("widths, density, seed", [([5, 4, 6], 0.5, 0), ([3, 7, 2, 5], 0.3, 1), ([8, 8], 0.15, 2), ([4, 4, 4, 4], 0.9, 3)])
def test_every_order_and_point_matches_networkx(widths, density, seed):
    checkpoint = random_checkpoint(widths, density=density, seed=seed)
    for order in P.ORDERS:
        samples = 3 if order == "random" else 1
        frame = P.percolation(checkpoint, order, points=11, samples=samples, seed=7)
        brute = [brute_curve(checkpoint, order, s, frame["edges_kept"]) for s in range(samples)]
        for name in P.QUANTITIES:
            stacked = np.stack([b[name].to_numpy(dtype=float) for b in brute])
            assert frame[name].to_numpy() == pytest.approx(stacked.mean(axis=0), abs=1e-12), (order, name)
            if order == "random":
                assert frame[f"{name}_std"].to_numpy() == pytest.approx(stacked.std(axis=0, ddof=1), abs=1e-12)


@pytest.mark.parametrize("first", [1, 3, 10])
def test_growing_prefix_with_ties_matches_networkx_at_every_edge(first):
    checkpoint = random_checkpoint([6, 9, 5], density=0.6, seed=5)
    rounded = tuple(Layer(l.name, l.inputs, l.outputs, l.src, l.dst, np.round(l.w * 2) / 2 + 0.01) for l in checkpoint.layers)
    checkpoint = Checkpoint("r", 0, rounded)  # many equal |w|: ties are broken by (src, dst)
    src, dst, _, _ = checkpoint.edge_list()
    everything = np.arange(checkpoint.edges + 1)
    for order in P.ORDERS:
        merges = P.merges(checkpoint.neurons, src, dst, P.order_key(checkpoint, order, seed=7), first=first)
        got = merges.quantities(merges.state(everything))
        brute = brute_curve(checkpoint, order, 0, everything)
        for name in P.QUANTITIES:
            assert got[name] == pytest.approx(brute[name].to_numpy(dtype=float), abs=1e-12), (order, name)


def test_measured_threshold_is_the_peak_of_the_averaged_curve():
    checkpoint = random_checkpoint([6, 6, 6], density=0.7, seed=4)
    everything = np.arange(checkpoint.edges + 1)
    curves = [brute_curve(checkpoint, "random", s, everything)["mean_cluster_size"] for s in range(3)]
    peak = int(np.argmax(np.mean(curves, axis=0)))
    checkpoint_seeded = checkpoint
    assert P.measured_threshold(checkpoint_seeded, samples=3, seed=7) == pytest.approx(peak / checkpoint.edges)


def test_percolation_refuses_bad_arguments():
    checkpoint = random_checkpoint([3, 3], seed=1)
    with pytest.raises(InputError, match="unknown order"):
        P.percolation(checkpoint, "sideways")
    with pytest.raises(InputError, match="--points"):
        P.percolation(checkpoint, points=1)
    with pytest.raises(InputError, match="--canonical"):
        P.percolation(checkpoint, "descending", canonical=True)
    with pytest.raises(InputError, match="--samples"):
        P.percolation(checkpoint, "random", samples=0)


def test_empty_checkpoint():
    empty = Checkpoint("r", 0, (Layer.from_dense("fc", np.zeros((2, 3))),))
    frame = P.percolation(empty, "descending", points=3)
    assert frame["giant_fraction"].tolist() == [0.2] * 3 and frame["components"].tolist() == [5] * 3
    row = P.thresholds(empty, samples=1).iloc[0]
    assert np.isnan(row[["p_c_molloy_reed", "p_c_branching", "p_c_measured", "p_c_seed"]].astype(float)).all()


# --- components -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("widths, density, seed", [([6, 5, 4], 0.2, 0), ([8, 3, 8, 2], 0.35, 1), ([4, 4], 1.0, 2)])
def test_components_match_networkx(widths, density, seed):
    checkpoint = random_checkpoint(widths, density=density, seed=seed)
    src, dst, _, _ = checkpoint.edge_list()
    graph = nx.Graph()
    graph.add_nodes_from(range(checkpoint.neurons))
    graph.add_edges_from(zip(src.tolist(), dst.tolist()))
    parts = sorted(nx.connected_components(graph), key=lambda c: (-len(c), min(c)))
    labels = C.component_labels(checkpoint)
    assert [set(np.flatnonzero(labels == i).tolist()) for i in range(len(parts))] == parts
    row = C.components(checkpoint).iloc[0]
    assert row["components"] == len(parts) and row["giant_fraction"] == len(parts[0]) / checkpoint.neurons
    assert row["isolated"] == sum(len(p) == 1 for p in parts)
    directed = nx.DiGraph(list(zip(src.tolist(), dst.tolist())))
    directed.add_nodes_from(range(checkpoint.neurons))
    off = checkpoint.offsets
    inputs, outputs = range(off[0], off[1]), range(off[-2], off[-1])
    reach_out = [any(nx.has_path(directed, i, o) for o in outputs) for i in inputs]
    reached = [any(nx.has_path(directed, i, o) for i in inputs) for o in outputs]
    assert row["inputs_connected"] == pytest.approx(np.mean(reach_out))
    assert row["outputs_connected"] == pytest.approx(np.mean(reached))


# --- degrees --------------------------------------------------------------------------------------------

def test_degrees_match_networkx():
    checkpoint = random_checkpoint([5, 6, 3], density=0.5, seed=6)
    src, dst, w, _ = checkpoint.edge_list()
    graph = nx.Graph()
    graph.add_nodes_from(range(checkpoint.neurons))
    graph.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), w.astype(float).tolist()))
    frame = D.degrees(checkpoint)
    assert frame["degree"].tolist() == [graph.degree(i) for i in range(checkpoint.neurons)]
    assert frame["strength"].to_numpy() == pytest.approx([graph.degree(i, weight="weight") for i in range(checkpoint.neurons)])
    assert frame["abs_strength"].to_numpy() == pytest.approx(np.abs(frame["strength"].to_numpy()))
    assert (frame["in_degree"] + frame["out_degree"]).tolist() == frame["degree"].tolist()
    assert frame["strength_in"].to_numpy() + frame["strength_out"].to_numpy() == pytest.approx(frame["strength"].to_numpy())
    group, index = frame["group"].to_numpy(), frame["index"].to_numpy()
    assert (checkpoint.offsets[group] + index).tolist() == list(range(checkpoint.neurons))


def test_summary_passes_powerlaw_through():
    import powerlaw

    checkpoint = random_checkpoint([40, 30, 20], density=0.4, seed=8)
    summary = D.degree_summary(checkpoint)
    assert len(summary) == 2 * 4 and summary["group"].isna().sum() == 2
    arrays = D.degree_arrays(checkpoint)
    for quantity, discrete in D.SUMMARY_QUANTITIES.items():
        row = summary[summary["group"].isna() & (summary["quantity"] == quantity)].iloc[0]
        x = arrays[quantity].astype(float)
        assert row["mean"] == pytest.approx(x.mean()) and row["mean_sq"] == pytest.approx((x * x).mean())
        fit = powerlaw.Fit(x[x > 0], discrete=discrete, verbose=0)
        assert row["alpha"] == fit.power_law.alpha and row["xmin"] == fit.power_law.xmin
        assert row["sigma"] == fit.power_law.standard_err and row["D"] == fit.power_law.D
        assert (row["R_lognormal"], row["p_lognormal"]) == fit.distribution_compare("power_law", "lognormal", normalized_ratio=True)
        assert (row["R_exponential"], row["p_exponential"]) == fit.distribution_compare("power_law", "exponential", normalized_ratio=True)


def test_fit_oracle_and_degenerate_data():
    import powerlaw

    fit = powerlaw.Fit([1, math.e, math.e**2], xmin=1, verbose=0)  # the science.md oracle of the package we wrap
    assert fit.power_law.alpha == pytest.approx(2) and fit.power_law.standard_err == pytest.approx(1 / math.sqrt(3))
    assert all(np.isnan(v) for v in D.fit_heavy_tail(np.full(10, 7.0)).values())
    row = D.degree_summary(dense([4, 4, 4])).iloc[0]
    assert row["mean"] == pytest.approx(16 / 3) and row["mean_sq"] == pytest.approx(32) and np.isnan(row["alpha"])


# --- CLI ------------------------------------------------------------------------------------------------

@pytest.fixture
def filled(store_path):
    with netarchive.open(store_path) as archive:
        archive.write(random_checkpoint([12, 10, 6], density=0.3, seed=1, run="r", level=0))
        archive.write(random_checkpoint([12, 10, 6], density=0.1, seed=2, run="r", level=1))
    return store_path


def invoke(store, *args):
    return CliRunner().invoke(cli, ["--store", str(store), *args], catch_exceptions=False)


def cypher(store, statement, **params):
    args = [f"--param={k}={v}" for k, v in params.items()]
    result = invoke(store, "query", "cypher", statement, *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_cli_components_write_back_is_visible_and_overwritten(filled):
    result = invoke(filled, "query", "components", "--run", "r", "--write", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["level"] for r in rows] == [0, 1]
    for _ in range(2):  # re-running overwrites, never duplicates
        invoke(filled, "query", "components", "--run", "r", "--level", "1", "--write")
    with netarchive.open(filled, read_only=True) as archive:
        expected = C.component_labels(archive.checkpoint("r", 1))
    got = cypher(filled, "MATCH (n:Neuron {run: $r, level: 1}) RETURN n.`group` AS layer, n.`index` AS i, n.component AS c "
                         "ORDER BY layer, i", r="r")
    assert [g["c"] for g in got] == expected.tolist() and len(got) == 28
    giant = cypher(filled, "MATCH (n:Neuron {run: $r, level: $l}) WHERE n.component = 0 RETURN count(*) AS n", r="r", l=1)
    assert giant[0]["n"] == round(rows[1]["giant_fraction"] * 28)


def test_cli_degrees_write_back_and_summary(filled, tmp_path):
    result = invoke(filled, "query", "degrees", "--run", "r", "--level", "0", "--write", "-o", str(tmp_path / "d.parquet"))
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(tmp_path / "d.parquet")
    got = cypher(filled, "MATCH (n:Neuron {run: $r, level: 0}) RETURN n.degree AS k, n.strength AS s ORDER BY n.`group`, n.`index`", r="r")
    assert [g["k"] for g in got] == table["degree"].tolist()
    assert [g["s"] for g in got] == pytest.approx(table["strength"].tolist())
    summary = invoke(filled, "query", "degrees", "--run", "r", "--summary", "--format", "csv")
    assert summary.exit_code == 0 and summary.output.splitlines()[0].startswith("run,level,group,quantity,n,mean,mean_sq,alpha")


def test_cli_percolation_threshold_and_formats(filled, tmp_path):
    result = invoke(filled, "query", "percolation", "--run", "r", "--level", "0", "--points", "5", "--format", "json")
    rows = json.loads(result.output)
    assert [r["kept"] for r in rows] == [0, 0.25, 0.5, 0.75, 1] and rows[-1]["order"] == "descending"
    result = invoke(filled, "query", "percolation", "--run", "r", "--order", "random", "--samples", "3", "--canonical",
                    "--points", "3", "--format", "csv")
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(pd.io.common.StringIO(result.output))
    assert len(frame) == 6 and "p" in frame and "giant_fraction_std" in frame
    result = invoke(filled, "query", "threshold", "--run", "r", "--samples", "2")
    assert result.exit_code == 0 and "p_c_molloy_reed" in result.output
    for command in ("percolation", "degrees"):
        png = tmp_path / f"{command}.png"
        result = invoke(filled, "plot", command, "--run", "r", "--samples", "2", "-o", str(png)) if command == "percolation" \
            else invoke(filled, "plot", command, "--run", "r", "--level", "1", "-o", str(png))
        assert result.exit_code == 0, result.output
        assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, code, message", [
    (["query", "components", "--run", "nope"], 1, "no run named 'nope'"),
    (["query", "degrees", "--run", "r", "--level", "9"], 1, "has no level 9"),
    (["query", "percolation", "--run", "r", "--order", "sideways"], 2, "Invalid value for '--order'"),
    (["query", "percolation", "--run", "r", "--points", "1"], 1, "--points must be an integer from 2"),
    (["query", "percolation", "--run", "r", "--canonical"], 1, "use it with --order random"),
    (["query", "threshold", "--run", "r", "--samples", "0"], 1, "--samples must be a positive integer"),
])
def test_cli_refuses_bad_arguments(filled, args, code, message):
    result = CliRunner().invoke(cli, ["--store", str(filled), *args])
    assert result.exit_code == code
    assert message in result.output


def test_plot_degrees_of_a_checkpoint_without_synapses_says_only_where_it_wrote(store_path, tmp_path):
    with netarchive.open(store_path) as archive:
        archive.write(random_checkpoint([4, 6, 3], density=0.0, run="e"))
    output = tmp_path / "d.png"
    result = CliRunner().invoke(cli, ["--store", str(store_path), "plot", "degrees", "--run", "e", "-o", str(output)])
    assert result.exit_code == 0 and result.output == f"wrote {output}\n"


def test_points_are_bounded():
    from netarchive.analysis.percolation import MAX_POINTS, kept_points

    with pytest.raises(InputError, match="from 2 .* to 100,000"):
        kept_points(MAX_POINTS + 1, 10)
    assert len(kept_points(MAX_POINTS, 10)[0]) == MAX_POINTS


@pytest.mark.parametrize("last", [0.3, 0.95, 1.0])  # the last chosen edge early, or after nearly every edge
def test_positions_against_a_full_sort(last):
    """_positions (histogram buckets, only the buckets of chosen edges sorted) against the position in a
    full lexsort of (bits, src, dst), ties counted from the first equal edge."""
    rng = np.random.default_rng(7)
    edges = 5000
    bits = rng.integers(0, 3000, edges).astype(np.uint32)  # many ties
    src, dst = rng.integers(0, 40, edges), rng.integers(0, 40, edges)
    order = np.lexsort((dst, src, bits))
    cut = bits[order[int(last * (edges - 1))]]
    chosen = rng.choice(np.flatnonzero(bits <= cut), 60, replace=False)
    chosen = np.append(chosen, order[int(last * (edges - 1))])
    rank = np.empty(edges, dtype=np.int64)
    rank[order] = np.arange(edges)
    triple = np.stack([bits[order], src[order], dst[order]])
    first_equal = np.maximum.accumulate(np.where(np.r_[True, np.any(triple[:, 1:] != triple[:, :-1], axis=0)],
                                                 np.arange(edges), 0))
    expected = first_equal[rank[chosen]] + 1
    assert np.array_equal(P._positions(bits, src, dst, chosen), expected)
