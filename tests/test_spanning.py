"""Spanning forests, neural persistence, TCCR, overlap, pruning masks and the in_msf write-back."""
from __future__ import annotations

import itertools
import json
import math

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn.utils.prune
from click.testing import CliRunner
from scipy.sparse.csgraph import connected_components

import netarchive
import netarchive.store.ladybug as ladybug_store
from netarchive.analysis import spanning
from netarchive.analysis.persistence import neural_persistence, persistence_diagram
from netarchive.cli import cli
from netarchive.errors import InputError
from netarchive.model import Checkpoint, Layer
from tests.conftest import random_checkpoint

A = np.array([[1.0, 0.5], [0.25, -0.75]])
B = np.array([[0.8, -0.4, 0.1], [0.2, 0.6, -0.2]])  # [outputs, inputs] = 2 x 3
P = np.array([[1.0, 0.0], [0.0, 0.5]])


def network(*matrices) -> Checkpoint:
    return Checkpoint("r", 0, tuple(Layer.from_dense(f"l{i}.weight", m) for i, m in enumerate(matrices)))


def layer_rows(table):
    return table[table["scope"] == "layer"].reset_index(drop=True)


def network_row(table):
    rows = table[table["scope"] == "network"]
    assert len(rows) == 1 and rows["layer"].isna().all() and rows["layer_name"].iloc[0] == ""
    return rows.iloc[0]


def f32_np(values, scale=1.0, components=1):
    """NP of forest weights |w| / scale exactly as stored (float32), for the non-dyadic worked values."""
    w = np.asarray(values, dtype=np.float32).astype(np.float64) / np.float64(np.float32(scale))
    return math.sqrt(components + np.sum((1 - w) ** 2))


# -- neural persistence: science.md worked values -------------------------------------------------
def test_np_of_a_alone():
    table = neural_persistence(network(A))
    row = layer_rows(table).iloc[0]
    assert row["np"] == pytest.approx(1.1456439237, abs=1e-9)
    assert row["np_normalized"] == pytest.approx(0.6614378278, abs=1e-9)
    assert (row["components"], row["msf_edges"], row["edges"]) == (1, 3, 4)
    assert network_row(table)["np_total"] == pytest.approx(1.1456439237, abs=1e-9)


def test_np_of_b_alone_is_scale_invariant():
    exact = layer_rows(neural_persistence(network(1.25 * B)))  # 1.25·B is B's w', exact in float32
    assert exact["np"][0] == pytest.approx(1.3693063938, abs=1e-9)
    assert exact["np_normalized"][0] == pytest.approx(0.6846531969, abs=1e-9)
    for scale in (1, 2):  # 0.8, 0.6 ... are stored as float32: the worked value holds to float32 precision
        row = layer_rows(neural_persistence(network(scale * B))).iloc[0]
        assert row["np"] == pytest.approx(1.3693063938, abs=1e-7)
        assert row["np"] == pytest.approx(f32_np([0.8, 0.6, 0.4, 0.2], 0.8), abs=1e-12)
    assert neural_persistence(network(2 * B))["np"][0] == neural_persistence(network(B))["np"][0]


def test_np_of_the_network_a_b():
    table = neural_persistence(network(A, B.T))  # B.T chains after A; a layer's graph is the same transposed
    rows = layer_rows(table)
    assert rows["np"][1] == pytest.approx(f32_np([0.8, 0.6, 0.4, 0.2]), abs=1e-12)
    assert rows["np"][1] == pytest.approx(1.4832396974, abs=1e-7)
    total = network_row(table)
    assert total["np_total"] == pytest.approx(2.6288836212, abs=1e-7)
    assert total["np_normalized_mean"] == pytest.approx(0.7015288382, abs=1e-7)
    assert total["np_total"] == pytest.approx(rows["np"].sum(), abs=1e-12)


def test_np_of_the_network_2a_b_and_layer_normalisation():
    table = neural_persistence(network(2 * A, B.T))
    assert layer_rows(table)["np"][1] == pytest.approx(f32_np([0.8, 0.6, 0.4, 0.2], 2.0), abs=1e-12)
    assert layer_rows(table)["np"][1] == pytest.approx(1.8165902125, abs=1e-7)
    assert network_row(table)["np_normalized_mean"] == pytest.approx(0.7848664670, abs=1e-7)
    per_layer = layer_rows(neural_persistence(network(2 * A, B.T), normalize="layer"))
    assert per_layer["np"][0] == pytest.approx(1.1456439237, abs=1e-9)
    assert per_layer["np"][1] == pytest.approx(1.3693063938, abs=1e-7)


def test_np_of_a_pruned_layer_counts_components():
    row = layer_rows(neural_persistence(network(P))).iloc[0]
    assert row["np"] == pytest.approx(1.5, abs=1e-9)
    assert row["np_normalized"] == pytest.approx(0.8660254038, abs=1e-9)
    assert (row["components"], row["msf_edges"]) == (2, 2)


def test_np_order_p_and_scale_invariance():
    row = layer_rows(neural_persistence(network(A), p=1)).iloc[0]
    assert row["np"] == pytest.approx(1.75, abs=1e-12)  # 1 component + 0 + 0.25 + 0.5
    assert row["np_normalized"] == pytest.approx(1.75 / 3, abs=1e-12)
    ckpt = random_checkpoint([6, 5, 4], density=0.6, seed=4)
    doubled = Checkpoint("r", 0, tuple(Layer(l.name, l.inputs, l.outputs, l.src, l.dst, 2 * l.w) for l in ckpt.layers))
    assert np.allclose(neural_persistence(ckpt)["np"], neural_persistence(doubled)["np"], equal_nan=True)


def test_persistence_diagram_has_forest_points_and_one_zero_per_component():
    diagram = persistence_diagram(network(A, P), "l1.weight")
    assert diagram["death"].tolist() == [1.0, 0.5, 0.0, 0.0]
    assert diagram["birth"].eq(1).all() and diagram["src"].isna().sum() == 2
    assert math.sqrt((diagram["persistence"] ** 2).sum()) == pytest.approx(1.5)
    with pytest.raises(InputError, match="no layer"):
        persistence_diagram(network(A), "fc9")


# -- forests against brute force ------------------------------------------------------------------
def kruskal_in_order(layer: Layer) -> set:
    """Plain Kruskal over the documented order (-|w|, src, dst)."""
    parent = list(range(layer.inputs + layer.outputs))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    chosen = set()
    for w, s, d in sorted(zip(-np.abs(layer.w).astype(float), layer.src.tolist(), layer.dst.tolist())):
        a, b = find(s), find(layer.inputs + d)
        if a != b:
            parent[a] = b
            chosen.add((s, d))
    return chosen


def random_layers(count, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        m, n = (int(x) for x in rng.integers(1, 12, 2))
        weight = rng.integers(-4, 5, size=(n, m)).astype(float)  # many ties
        weight[rng.random(weight.shape) < rng.random() * 0.9] = 0  # often disconnected
        yield Layer.from_dense("x", weight)
    # larger layers that take several filter-Kruskal rounds, one with its heavy weights in one corner
    weight = rng.integers(1, 6, size=(40, 30)).astype(float)
    yield Layer.from_dense("ties", weight)
    weight = rng.random((50, 60)) + 0.01
    weight[:10, :10] += 10
    weight[rng.random(weight.shape) < 0.5] = 0
    yield Layer.from_dense("corner", weight)


def test_forests_match_networkx_and_the_documented_tie_break():
    for layer in random_layers(150):
        mask = spanning.forest_mask(layer)
        graph = nx.Graph()
        graph.add_nodes_from(range(layer.inputs + layer.outputs))
        graph.add_weighted_edges_from((int(s), layer.inputs + int(d), abs(float(w))) for s, d, w in zip(layer.src, layer.dst, layer.w))
        tree = nx.maximum_spanning_tree(graph)
        assert mask.sum() == tree.number_of_edges() == layer.inputs + layer.outputs - nx.number_connected_components(graph)
        assert np.abs(layer.w[mask]).sum() == pytest.approx(tree.size(weight="weight"))
        assert set(zip(layer.src[mask].tolist(), layer.dst[mask].tolist())) == kruskal_in_order(layer)


def test_forest_does_not_depend_on_edge_order():
    layer = next(iter(random_layers(1, seed=5)))
    shuffled = np.random.default_rng(1).permutation(layer.edges)
    again = Layer("x", layer.inputs, layer.outputs, layer.src[shuffled], layer.dst[shuffled], layer.w[shuffled])
    edges = lambda l, m: set(zip(l.src[m].tolist(), l.dst[m].tolist()))  # noqa: E731
    assert edges(layer, spanning.forest_mask(layer)) == edges(again, spanning.forest_mask(again))


def test_forest_edges_table():
    table = spanning.forest_edges(network(A, P))
    assert table.columns.tolist() == ["run", "level", "layer", "layer_name", "src", "dst", "ky", "kx", "w"]
    assert (table["ky"] == -1).all() and table["layer"].tolist() == [0, 0, 0, 1, 1]
    assert sorted(table[table["layer_name"] == "l0.weight"]["w"].tolist()) == [-0.75, 0.5, 1.0]
    assert len(table) == 3 + 2


def test_empty_layer_has_an_empty_forest():
    layer = Layer.from_dense("z", np.zeros((3, 2)))
    assert spanning.forest_mask(layer).shape == (0,)
    assert layer_rows(neural_persistence(Checkpoint("r", 0, (layer,))))["components"][0] == 5


# -- TCCR -----------------------------------------------------------------------------------------
def test_tccr_of_the_mnist_fcn():
    ckpt = random_checkpoint([784, 100, 100, 100, 100, 100, 10], density=1.0)
    table = spanning.tccr(ckpt)
    rows = layer_rows(table)
    assert rows["tccr"].round(5).tolist() == [88.78822] + [50.25126] * 4 + [9.17431]
    assert rows["tccr"][0] == pytest.approx(78400 / 883, abs=1e-12)
    net = network_row(table)
    assert net["tccr"] == pytest.approx(119400 / 1788, abs=1e-12) and round(net["tccr"], 5) == 66.77852
    assert not table["past_critical"].any() and net["compression"] == 1.0


def test_tccr_flags_layers_past_the_critical_ratio():
    table = spanning.tccr(network(P, A))
    assert layer_rows(table)["past_critical"].tolist() == [True, False]  # 2 edges < tree of 3
    assert layer_rows(table)["compression"][0] == 2.0 and layer_rows(table)["tccr"][0] == pytest.approx(4 / 3)


# -- overlap --------------------------------------------------------------------------------------
def test_overlap_of_a_hand_case():
    weight = np.array([[4.0, 3.0, 0.5], [2.9, 2.8, 1.0]])  # top-4 = 4, 3, 2.9, 2.8 closes a cycle
    row = layer_rows(spanning.overlap(network(weight))).iloc[0]
    assert (row["msf_edges"], row["overlap"]) == (4, 3)
    assert row["overlap_fraction"] == 0.75
    assert row["random_overlap"] == pytest.approx(16 / 6)  # hypergeometric k·|F|/E
    assert row["random_overlap_std"] == pytest.approx(math.sqrt(4 * (4 / 6) * (2 / 6) * 2 / 5))


@pytest.mark.parametrize(("m", "n", "expected"), [(2, 2, 3), (2, 3, 19 / 5), (3, 3, 65 / 14), (2, 4, 32 / 7), (3, 4, 839 / 154)])
def test_overlap_expectation_for_random_weights(m, n, expected):
    """science.md: averaged over all top-k sets (every order of i.i.d. weights is equally likely)."""
    edges, k = m * n, m + n - 1
    rng = np.random.default_rng(0)
    total, count = 0, 0
    for top in itertools.combinations(range(edges), k):
        weight = rng.random(edges)
        weight[list(top)] += 2
        layer = Layer.from_dense("x", weight.reshape(n, m))
        forest = spanning.forest_mask(layer)
        top_k = spanning._top_k(spanning.order_key(layer), k)
        hits = int((top_k & forest).sum())
        assert hits == m + n - components(layer, top_k)  # science.md: distinct weights
        total += hits
        count += 1
    assert total / count == pytest.approx(expected, abs=1e-12)


def test_forest_survival_across_levels():
    before = Checkpoint("r", 0, (Layer.from_dense("l0.weight", np.array([[4.0, 3.0, 0.5], [2.9, 2.8, 1.0]])),))
    after = Checkpoint("r", 1, (Layer.from_dense("l0.weight", np.array([[4.0, 3.0, 0.0], [2.9, 2.8, 0.0]])),))
    row = layer_rows(spanning.forest_survival(before, after)).iloc[0]
    # forest of level 0: 4, 3, 2.9, 1.0; level 1 keeps 4, 3, 2.9 and they are its forest too
    assert (row["msf_edges"], row["survived"], row["still_in_forest"]) == (4, 3, 3)
    assert row["random_survived_fraction"] == pytest.approx(4 / 6)
    with pytest.raises(InputError, match="different layer widths"):
        spanning.forest_survival(before, network(A))


# -- pruning masks --------------------------------------------------------------------------------
def components(layer: Layer, keep: np.ndarray) -> int:
    from scipy.sparse import coo_matrix

    v = layer.inputs + layer.outputs
    graph = coo_matrix((np.ones(keep.sum()), (layer.src[keep], layer.inputs + layer.dst[keep])), shape=(v, v))
    return connected_components(graph, directed=False)[0]


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_topological_masks_keep_the_forest_and_the_sparsity(scope):
    for seed in range(4):
        ckpt = random_checkpoint([12, 9, 7, 3], density=0.8, seed=seed)
        target = min(1 - spanning.forest_mask(l).sum() / l.dense_size for l in ckpt.layers) - 0.05
        masks, summary = spanning.pruning_masks(ckpt, target, method="topological", scope=scope)
        total = network_row(summary)
        assert total["kept"] == round((1 - target) * ckpt.dense_edges)
        assert total["msf_kept"] == total["msf_edges"] and total["components_kept"] == total["components"]
        for layer in ckpt.layers:
            mask = masks[layer.name]
            assert mask.shape == (layer.outputs, layer.inputs) and not (mask & ~layer.mask()).any()
            keep = mask[layer.dst, layer.src]
            forest = spanning.forest_mask(layer)
            assert keep[forest].all()
            assert components(layer, keep) == components(layer, np.ones(layer.edges, bool))
            pruned = Layer(layer.name, layer.inputs, layer.outputs, layer.src[keep], layer.dst[keep], layer.w[keep])
            assert set(zip(pruned.src[spanning.forest_mask(pruned)].tolist(), pruned.dst[spanning.forest_mask(pruned)].tolist())) \
                == set(zip(layer.src[forest].tolist(), layer.dst[forest].tolist()))
            if scope == "layer":
                assert mask.sum() == round((1 - target) * layer.dense_size)


def test_magnitude_masks_keep_the_largest_weights():
    ckpt = network(np.array([[4.0, -3.0, 0.5], [2.9, 2.8, 1.0]]))
    masks, summary = spanning.pruning_masks(ckpt, 0.5, method="magnitude")
    assert masks["l0.weight"].tolist() == [[True, True, False], [True, False, False]]
    row = layer_rows(summary).iloc[0]  # forest 4, 3, 2.9, 1.0: magnitude keeps 3 of it and strands input 2
    assert (row["msf_edges"], row["msf_kept"], row["components"], row["components_kept"]) == (4, 3, 1, 2)
    masks, _ = spanning.pruning_masks(ckpt, 1 / 3, method="topological")
    assert masks["l0.weight"].sum() == 4 and masks["l0.weight"][1, 2]  # the forest edge 1.0 beats 2.8


def test_masks_refuse_impossible_sparsities():
    ckpt = network(A)
    with pytest.raises(InputError, match="past the topologically critical ratio of layer l0.weight"):
        spanning.pruning_masks(ckpt, 0.5, method="topological")
    with pytest.raises(InputError, match="critical ratio of the network"):
        spanning.pruning_masks(ckpt, 0.5, method="topological", scope="global")
    spanning.pruning_masks(ckpt, 0.5, method="magnitude")
    with pytest.raises(InputError, match="already has sparsity"):
        spanning.pruning_masks(network(P), 0.25, method="magnitude")
    with pytest.raises(InputError, match=r"\[0, 1\)"):
        spanning.pruning_masks(ckpt, 1.0)


# -- CLI and write-back ---------------------------------------------------------------------------
@pytest.fixture
def stored(store_path):
    with netarchive.open(store_path) as archive:
        for level, density in enumerate([1.0, 0.6, 0.3]):
            archive.write(random_checkpoint([10, 8, 6, 3], density=density, seed=level, level=level))
    return store_path


def run_cli(store, *args):
    result = CliRunner().invoke(cli, ["--store", str(store), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_tables(stored):
    rows = json.loads(run_cli(stored, "query", "persistence", "--run", "r", "--format", "json"))
    assert len(rows) == 3 * 4 and {row["scope"] for row in rows} == {"layer", "network"}
    assert all(row["np_total"] is not None for row in rows if row["scope"] == "network")
    rows = json.loads(run_cli(stored, "query", "tccr", "--run", "r", "--level", "0", "--format", "json"))
    assert rows[0]["tccr"] == pytest.approx(80 / 17)
    rows = json.loads(run_cli(stored, "query", "overlap", "--run", "r", "--level", "1", "--format", "json"))
    assert rows[-1]["scope"] == "network" and 0 <= rows[-1]["overlap_fraction"] <= 1
    rows = json.loads(run_cli(stored, "query", "overlap", "--run", "r", "--from-level", "0", "--format", "json"))
    assert [row["level"] for row in rows] == [1] * 4 + [2] * 4 and all(row["from_level"] == 0 for row in rows)
    result = CliRunner().invoke(cli, ["--store", str(stored), "query", "tccr", "--run", "nope"])
    assert result.exit_code == 1 and result.output.startswith("error: no run named 'nope'")


def test_cli_names_layers_and_conventions(stored):
    geometry = json.loads(run_cli(stored, "query", "tccr", "--run", "r", "--level", "0", "--format", "json"))
    seed = json.loads(run_cli(stored, "query", "tccr", "--run", "r", "--level", "0", "--convention", "seed", "--format", "json"))
    assert [row["tccr"] for row in seed] == [row["tccr"] for row in geometry]  # a chain of Linear layers
    assert {row["convention"] for row in seed} == {"seed"} and {row["convention"] for row in geometry} == {"geometry"}
    assert [(row["layer"], row["layer_name"], row["kind"]) for row in geometry] == \
        [(0, "fc0.weight", "linear"), (1, "fc1.weight", "linear"), (2, "fc2.weight", "linear"), (None, "", "")]
    assert run_cli(stored, "query", "tccr", "--run", "r", "--level", "0").lstrip().startswith("TCCR = edges / spanning-forest size")
    unrolled = json.loads(run_cli(stored, "query", "persistence", "--run", "r", "--level", "1", "--unroll", "--format", "json"))
    assert unrolled == json.loads(run_cli(stored, "query", "persistence", "--run", "r", "--level", "1", "--format", "json"))
    assert {row["graph"] for row in unrolled} == {"neurons", ""}


def test_cli_overlap_from_level_needs_a_later_level(stored):
    for later in ("0", "1"):
        result = CliRunner().invoke(cli, ["--store", str(stored), "query", "overlap", "--run", "r", "--from-level", "1", "--level", later])
        assert result.exit_code == 1 and result.output == f"error: --level {later} must be a later level than --from-level 1\n"
    result = CliRunner().invoke(cli, ["--store", str(stored), "query", "overlap", "--run", "r", "--from-level", "2"])
    assert result.exit_code == 1 and result.output == "error: run 'r' has no level after 2\n"


def test_cli_prune_into_a_missing_directory_is_one_line(stored, tmp_path):
    result = CliRunner().invoke(cli, ["--store", str(stored), "prune", "--run", "r", "--level", "0", "--sparsity", "0.5",
                                      "-o", str(tmp_path / "none" / "masks.pt")])
    assert result.exit_code == 1 and result.output.startswith("error: No such file or directory")
    assert len(result.output.splitlines()) == 1


def test_cli_prune_writes_masks_for_custom_from_mask(stored, tmp_path):
    path = tmp_path / "masks.pt"
    run_cli(stored, "prune", "--run", "r", "--level", "0", "--sparsity", "0.5", "-o", str(path))
    masks = torch.load(path, map_location="cpu", weights_only=True)
    assert sorted(masks) == ["fc0.weight_mask", "fc1.weight_mask", "fc2.weight_mask"]
    module = torch.nn.Linear(10, 8)
    torch.nn.utils.prune.custom_from_mask(module, "weight", masks["fc0.weight_mask"])
    assert (module.weight == 0).float().mean().item() == pytest.approx(0.5, abs=1e-6)
    assert torch.equal(module.weight_mask, masks["fc0.weight_mask"])
    result = CliRunner().invoke(cli, ["--store", str(stored), "prune", "--run", "r", "--level", "0", "--sparsity", "0.95", "-o", str(path)])
    assert result.exit_code == 1 and "past the topologically critical ratio" in result.output


def test_cli_plots(stored, tmp_path):
    run_cli(stored, "plot", "persistence", "--run", "r", "-o", str(tmp_path / "np.png"))
    run_cli(stored, "plot", "persistence", "--run", "r", "--layer", "fc1.weight", "--level", "1", "-o", str(tmp_path / "d.png"))
    run_cli(stored, "plot", "persistence", "--run", "r", "--layer", "1", "--unroll", "-o", str(tmp_path / "by_index.png"))
    assert (tmp_path / "np.png").stat().st_size > 1000 and (tmp_path / "d.png").stat().st_size > 1000
    assert (tmp_path / "by_index.png").stat().st_size > 1000


def flagged(store, level):
    rows = json.loads(run_cli(
        store, "query", "cypher",
        "MATCH (c:Checkpoint {level: $level}) MATCH (a:Neuron)-[s:SYNAPSE]->(b:Neuron) WHERE a.id / 4294967296 = c.id "
        "RETURN a.`group` AS layer, a.`index` AS src, b.`index` AS dst, s.in_msf AS in_msf",
        "--param", f"level={level}", "--format", "json",
    ))
    return {(r["layer"], r["src"], r["dst"]) for r in rows if r["in_msf"]}, {r["in_msf"] for r in rows}


@pytest.mark.parametrize("rebuild_factor", [0, 10**9])  # row-by-row updates, bulk rebuild
def test_write_back_marks_the_forest(stored, monkeypatch, rebuild_factor):
    monkeypatch.setattr(ladybug_store, "UPDATE_REBUILD_FACTOR", rebuild_factor)
    run_cli(stored, "query", "persistence", "--run", "r", "--level", "1", "--write")
    with netarchive.open(stored, read_only=True) as archive:
        ckpt = archive.checkpoint("r", 1)
    expected = set(zip(*(a.tolist() for a in spanning.forest_synapses(ckpt, spanning.spanning_forests(ckpt))[:3])))
    assert flagged(stored, 1) == (expected, {True, False})
    assert flagged(stored, 0) == (set(), {False})
    run_cli(stored, "query", "persistence", "--run", "r", "--write")  # again, every level: overwritten
    assert flagged(stored, 1)[0] == expected
    with netarchive.open(stored) as archive:
        archive.store.set_synapse_flag("r", 1, "in_msf", [0], [int(ckpt.layers[0].src[0])], [int(ckpt.layers[0].dst[0])])
        with pytest.raises(InputError, match="outside the checkpoint"):
            archive.store.set_synapse_flag("r", 1, "in_msf", [5], [0], [0])
        pruned = np.argwhere(~ckpt.layers[0].mask())[0]  # (dst, src) of a pruned synapse
        with pytest.raises(InputError, match="not in the checkpoint"):
            archive.store.set_synapse_flag("r", 1, "in_msf", [0], [int(pruned[1])], [int(pruned[0])])
        archive.write(random_checkpoint([10, 8, 6, 3], level=3))  # later ingests get in_msf = false
        archive.rm("r", 2)
    assert flagged(stored, 1)[0] == {(0, int(ckpt.layers[0].src[0]), int(ckpt.layers[0].dst[0]))}
    assert flagged(stored, 3) == (set(), {False})


def test_ingest_after_neuron_write_back(archive):
    archive.write(random_checkpoint([3, 4, 2]))
    archive.set_neuron_properties("r", 0, {"score": np.arange(9.0)})
    archive.write(random_checkpoint([3, 4, 2], level=1))
    assert archive.checkpoints("r")["level"].tolist() == [0, 1]
