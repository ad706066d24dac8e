"""Convolutional and residual networks in the archive, on both backends (the embedded one and the real Neo4j
server): every kernel weight (value, offset, channels), the groups, batch-norm statistics and weightless
connections read back exactly; ``eval`` from the archive equals torch's forward pass of the same pruned
module, also after ``--replace`` and after export -> ingest; Cypher counts by kernel offset equal numpy's;
flags keyed by (layer, src, dst, ky, kx); ``check`` finds a missing CONNECTION row; a crash leaves the old
or the new CNN; an archive written by the schema before (``Neuron.layer``, synapses without ``layer``)
is upgraded and reads back as it was."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import netarchive
from netarchive.analysis.forward import evaluate
from netarchive.api import Archive
from netarchive.loaders.traced import from_module
from netarchive.model.columns import connection_columns, synapse_columns
from tests import models
from tests.conftest import random_checkpoint
from tests.test_traced import prune_randomly

SHAPES = {"cnn": (1, 8, 8), "residual_mlp": (6,), "basic_block": (3, 8, 8), "depthwise_separable": (4, 6, 6),
          "conv1d_net": (2, 9)}
"""The test models of tests/models.py: CNN + BN + max pooling, residual MLP, ResNet block with a 1x1
projection, depthwise-separable convolutions, Conv1d with concatenation."""


@pytest.fixture(params=["ladybug", "neo4j"])
def backend(request, tmp_path):
    """(archive, run prefix): an embedded archive, or one on the session's Neo4j server (``test-`` runs)."""
    if request.param == "ladybug":
        with netarchive.open(tmp_path / "archive") as archive:
            yield archive, "net"
        return
    from tests.neo4j_server import run_name

    store = request.getfixturevalue("neo4j_store")
    yield Archive(store), run_name()


def pruned(name: str, seed: int = 0):
    return prune_randomly(getattr(models, name)(), density=0.5, seed=seed)


def traced(model, name: str, run: str, level: int = 0):
    shape = SHAPES[name]
    return from_module(model, run=run, level=level, input_shape=shape if len(shape) > 1 else None)


def kernel_weights(layer) -> set:
    """Every synapse of a layer as (input channel, output channel, ky, kx, w)."""
    ky = layer.ky if layer.ky is not None else np.full(layer.edges, -1)
    kx = layer.kx if layer.kx is not None else np.full(layer.edges, -1)
    return set(zip(layer.src.tolist(), layer.dst.tolist(), ky.tolist(), kx.tolist(), layer.w.tolist()))


def assert_same_network(back, net) -> None:
    assert back.architecture() == net.architecture()
    assert back.widths == net.widths and back.connections == net.connections
    for a, b in zip(net.layers, back.layers, strict=True):
        assert kernel_weights(b) == kernel_weights(a), a.name
        assert (a.bias is None and b.bias is None) or np.array_equal(a.bias, b.bias), a.name
    for a, b in zip(net.batchnorms, back.batchnorms, strict=True):
        for field, values in a.arrays().items():
            again = b.arrays()[field]
            assert (values is None and again is None) or np.array_equal(values, again), (a.name, field)
    assert [column.tolist() for column in back.connection_edges()] == [column.tolist() for column in net.connection_edges()]


def samples(name: str, n: int = 40):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, int(np.prod(SHAPES[name])))).astype(np.float32)
    return x, rng.integers(0, 3, n)


def torch_scores(model, name: str, x, y) -> tuple[float, float]:
    with torch.no_grad():
        out = model(torch.tensor(x).reshape(len(x), *SHAPES[name]))
    loss = torch.nn.functional.cross_entropy(out, torch.tensor(y)).item()
    return float((out.argmax(1).numpy() == y).mean()), loss


def assert_eval_equals_torch(checkpoint, model, name: str) -> None:
    x, y = samples(name)
    row = evaluate([checkpoint], x, y).iloc[0]
    accuracy, loss = torch_scores(model, name, x, y)
    assert row.accuracy == accuracy and abs(row.loss - loss) < 1e-5, name


@pytest.mark.parametrize("name", SHAPES)
def test_every_kernel_weight_group_norm_and_connection_round_trips(backend, name):
    archive, prefix = backend
    model = pruned(name)
    net = traced(model, name, f"{prefix}-{name}")
    archive.write(net)
    back = archive.checkpoint(net.run, 0)
    assert_same_network(back, net)
    assert_eval_equals_torch(back, model, name)
    kinds = archive.cypher("MATCH (a:Neuron {run: $run})-[c:CONNECTION]->(b:Neuron) RETURN c.kind AS kind, count(*) AS n",
                           run=net.run)
    expected = pd.Series(connection_columns(net)["kind"]).value_counts()
    assert dict(zip(kinds.kind, kinds.n)) == {kind: int(n) for kind, n in expected.items()}
    groups = archive.cypher("MATCH (n:Neuron {run: $run}) RETURN n.`group` AS g, count(*) AS n ORDER BY g", run=net.run)
    assert groups.n.tolist() == list(net.widths)


ROWS = {
    "checkpoint": "MATCH (c:Checkpoint) RETURN c.* ORDER BY c.id",
    "neurons": "MATCH (n:Neuron) RETURN n.* ORDER BY n.id",
    "synapses": "MATCH (a:Neuron)-[s:SYNAPSE]->(b:Neuron) RETURN a.id AS src, b.id AS dst, s.w AS w, s.layer AS layer, "
                "s.ky AS ky, s.kx AS kx, s.packed AS packed ORDER BY src, dst, layer, ky, kx",
    "connections": "MATCH (a:Neuron)-[c:CONNECTION]->(b:Neuron) RETURN a.id AS src, b.id AS dst, c.kind AS kind ORDER BY src, dst, kind",
}


@pytest.mark.parametrize("name", SHAPES)
def test_a_small_write_creates_the_rows_a_copy_would(tmp_path, monkeypatch, name):
    """Up to LOGGED_SYNAPSES synapses are created in one logged transaction, more are copied: the same rows."""
    import netarchive.store.ladybug as ladybug_store

    net = traced(pruned(name), name, "net")
    assert 0 < net.edges <= ladybug_store.LOGGED_SYNAPSES
    stored = []
    for logged in (ladybug_store.LOGGED_SYNAPSES, 0):
        monkeypatch.setattr(ladybug_store, "LOGGED_SYNAPSES", logged)
        with netarchive.open(tmp_path / f"archive{logged}") as archive:
            archive.write(net)
            stored.append({what: archive.cypher(query).drop(columns=["c.written"], errors="ignore") for what, query in ROWS.items()})
    for what in ROWS:
        pd.testing.assert_frame_equal(stored[0][what], stored[1][what], obj=what)
    assert len(stored[0]["synapses"]) == net.edges
    assert len(stored[0]["connections"]) == len(connection_columns(net)["kind"])


@pytest.mark.parametrize("name", ["cnn", "basic_block"])
def test_eval_equals_torch_after_replace(backend, name):
    archive, prefix = backend
    run = f"{prefix}-{name}"
    archive.write(traced(pruned(name, seed=1), name, run))
    model = pruned(name, seed=2)
    archive.write(traced(model, name, run), replace=True)
    assert_eval_equals_torch(archive.checkpoint(run, 0), model, name)
    assert archive.check().empty


def test_cypher_counts_by_kernel_offset_equal_numpys(backend):
    archive, prefix = backend
    net = traced(pruned("basic_block"), "basic_block", f"{prefix}-offsets")
    archive.write(net)
    counted = archive.cypher(
        "MATCH (a:Neuron {run: $run, level: 0})-[s:SYNAPSE]->(:Neuron) WHERE s.ky IS NOT NULL "
        "RETURN s.layer AS layer, s.ky AS ky, s.kx AS kx, count(*) AS n ORDER BY layer, ky, kx", run=net.run)
    columns = synapse_columns(net)
    conv = columns["ky"] >= 0
    expected = pd.DataFrame({k: columns[k][conv].astype(int) for k in ("layer", "ky", "kx")}).value_counts().sort_index()
    assert [tuple(map(int, row)) for row in counted[["layer", "ky", "kx", "n"]].itertuples(index=False)] == \
        [(*key, int(n)) for key, n in expected.items()]
    centre = archive.cypher(  # the centre taps of conv layer 2 (cypher/schema.md)
        "MATCH (:Neuron {run: $run, level: 0})-[s:SYNAPSE {layer: 2, ky: 1, kx: 1}]->() RETURN count(s) AS n", run=net.run)
    layer = net.layers[2]
    assert centre.n.item() == int(((layer.ky == 1) & (layer.kx == 1)).sum())
    linear = archive.cypher("MATCH (:Neuron {run: $run})-[s:SYNAPSE {layer: $l}]->() RETURN count(s.ky) AS with_offset, "
                            "count(s) AS n", run=net.run, l=len(net.layers) - 1)
    assert linear.with_offset.item() == 0 and linear.n.item() == net.layers[-1].edges  # Linear: no ky/kx


def test_flags_are_keyed_by_layer_src_dst_and_kernel_offset(backend):
    archive, prefix = backend
    net = traced(pruned("cnn"), "cnn", f"{prefix}-flags")
    archive.write(net)
    conv, linear = net.layers[1], net.layers[2]
    pick = np.flatnonzero((conv.src == conv.src[0]) & (conv.dst == conv.dst[0]))  # one channel pair, several taps
    assert len(pick) > 1
    chosen = pick[:1]
    layer = np.array([1, 2])
    with pytest.raises(netarchive.errors.InputError, match="1 of the synapses to mark are not in the checkpoint"):
        archive.set_synapse_flag(net.run, 0, "chosen", layer, np.r_[conv.src[chosen], linear.src[:1]],
                                 np.r_[conv.dst[chosen], linear.dst[:1]])  # without ky/kx: a conv synapse has none
    archive.set_synapse_flag(net.run, 0, "chosen", layer, np.r_[conv.src[chosen], linear.src[:1]],
                             np.r_[conv.dst[chosen], linear.dst[:1]], np.r_[conv.ky[chosen], -1], np.r_[conv.kx[chosen], -1])
    rows = archive.cypher("MATCH (:Neuron {run: $run})-[s:SYNAPSE]->() WHERE s.chosen "
                          "RETURN s.layer AS layer, s.ky AS ky, s.kx AS kx, s.w AS w ORDER BY layer", run=net.run)
    assert rows.layer.tolist() == [1, 2]
    assert (rows.ky[0], rows.kx[0]) == (int(conv.ky[chosen[0]]), int(conv.kx[chosen[0]]))
    assert np.isclose(rows.w[0], conv.w[chosen[0]]) and pd.isna(rows.ky[1])


def test_check_finds_a_missing_connection_row(backend):
    archive, prefix = backend
    net = traced(pruned("residual_mlp"), "residual_mlp", f"{prefix}-check")
    archive.write(net)
    store = archive.store
    delete = "MATCH (a:Neuron {run: $run})-[c:CONNECTION {kind: 'add'}]->(b:Neuron) WHERE a.`index` = 0 DELETE c"
    if hasattr(store, "_write"):
        store._write(delete, run=net.run)
    else:
        with store._transaction():
            store._run(delete, {"run": net.run})
    table = archive.check()
    assert table.problem.tolist() == ["damaged-checkpoint"], table
    assert "CONNECTION rows" in table.detail[0]
    with pytest.raises(netarchive.errors.DamagedArchive, match="connections"):
        archive.checkpoint(net.run, 0)
    archive.check(repair=True)
    assert archive.check().empty and net.run not in set(archive.checkpoints().run)


def test_export_then_ingest_gives_the_same_network(backend, tmp_path):
    archive, prefix = backend
    model = pruned("basic_block")
    net = traced(model, "basic_block", f"{prefix}-export")
    archive.write(net)
    archive.export(tmp_path / "export", run=net.run)
    with netarchive.open(tmp_path / "again") as again:
        again.ingest([tmp_path / "export"], run=net.run)
        back = again.checkpoint(net.run, 0)
    assert_same_network(back, net)
    assert_eval_equals_torch(back, model, "basic_block")


# -- the embedded archive only ---------------------------------------------------------------------
OLD_TABLES = (
    "CREATE NODE TABLE Run(name STRING PRIMARY KEY, activation STRING)",
    "CREATE NODE TABLE Checkpoint(id INT64 PRIMARY KEY, run STRING, level INT64, neurons INT64, edges INT64, "
    "sparsity DOUBLE, layer_names STRING[], widths INT64[], input_shape INT64[], written STRING, layer_synapses INT64[], "
    "incomplete BOOL, architecture_source STRING)",
    "CREATE NODE TABLE Neuron(id INT64 PRIMARY KEY, run STRING, level INT64, layer INT64, `index` INT64, channel INT64, "
    "y INT64, x INT64, bias DOUBLE)",
    "CREATE NODE TABLE Counter(name STRING PRIMARY KEY, value INT64)",
    "CREATE REL TABLE HAS_CHECKPOINT(FROM Run TO Checkpoint)",
    "CREATE REL TABLE SYNAPSE(FROM Neuron TO Neuron, w FLOAT, in_msf BOOL DEFAULT false)",
)
"""The embedded archive's tables before issue 14."""


def write_old_archive(path, checkpoint) -> None:
    """An archive as the previous schema wrote it: chains, neurons numbered by ``layer``, synapses {w}."""
    import ladybug
    import pyarrow as pa

    path.mkdir()
    db = ladybug.Database(str(path / "graph.lbdb"))
    conn = ladybug.Connection(db)
    for statement in OLD_TABLES:
        conn.execute(statement)
    key = 1 << 32
    group = checkpoint.neuron_groups()
    bias = np.concatenate([np.full(checkpoint.widths[0], np.nan)] + [l.bias for l in checkpoint.layers])
    conn.execute("CREATE (:Run {name: $run, activation: 'relu'})", {"run": checkpoint.run})
    conn.execute("CREATE (:Counter {name: 'checkpoint', value: 1})")
    conn.execute(
        "MATCH (r:Run {name: $run}) CREATE (r)-[:HAS_CHECKPOINT]->(:Checkpoint {id: 1, run: $run, level: 0, neurons: $n, "
        "edges: $e, sparsity: $s, layer_names: $names, widths: $widths, written: 'old', layer_synapses: $per, "
        "architecture_source: 'assumed sequential'})",
        {"run": checkpoint.run, "n": checkpoint.neurons, "e": checkpoint.edges, "s": checkpoint.sparsity,
         "names": list(checkpoint.layer_names), "widths": list(checkpoint.widths),
         "per": [l.edges for l in checkpoint.layers]})
    conn.execute("COPY Neuron FROM $rows", {"rows": pa.table({
        "id": key + np.arange(checkpoint.neurons), "run": [checkpoint.run] * checkpoint.neurons,
        "level": np.zeros(checkpoint.neurons, np.int64), "layer": group.astype(np.int64),
        "index": (np.arange(checkpoint.neurons) - checkpoint.offsets[group]).astype(np.int64),
        "channel": pa.nulls(checkpoint.neurons, pa.int64()), "y": pa.nulls(checkpoint.neurons, pa.int64()),
        "x": pa.nulls(checkpoint.neurons, pa.int64()), "bias": pa.array(bias, mask=np.isnan(bias))})})
    src, dst, w, _ = checkpoint.edge_list()
    conn.execute("COPY SYNAPSE FROM $rows", {"rows": pa.table({"from": src + key, "to": dst + key, "w": w,
                                                               "in_msf": np.arange(len(w)) % 2 == 0})})
    conn.close()
    db.close()
    from netarchive.store.ladybug_files import write_versions

    write_versions(path)


def test_an_archive_of_the_previous_schema_is_upgraded_and_reads_the_same(tmp_path):
    old = random_checkpoint((6, 5, 3), density=0.6, seed=3, run="old")
    old = type(old)(old.run, 0, tuple(l.__class__(l.name, l.inputs, l.outputs, l.src, l.dst, l.w,
                                                   np.linspace(-1, 1, l.outputs)) for l in old.layers))
    write_old_archive(tmp_path / "archive", old)
    with netarchive.open(tmp_path / "archive", read_only=True) as reader:  # a reader upgrades it first
        back = reader.checkpoint("old", 0)
    assert [kernel_weights(l) for l in back.layers] == [kernel_weights(l) for l in old.layers]
    assert [l.bias.tolist() for l in back.layers] == [l.bias.tolist() for l in old.layers]
    with netarchive.open(tmp_path / "archive") as archive:
        assert archive.check().empty
        layers = archive.cypher("MATCH (a:Neuron)-[s:SYNAPSE]->(b:Neuron) RETURN s.layer AS l, a.`group` AS g, "
                                "count(*) AS n, sum(CASE WHEN s.in_msf THEN 1 ELSE 0 END) AS flagged ORDER BY l")
        assert layers.l.tolist() == layers.g.tolist() == [0, 1]
        assert layers.n.tolist() == [l.edges for l in old.layers]
        assert layers.flagged.sum() == (old.edges + 1) // 2  # other synapse properties kept
        archive.write(traced(pruned("cnn"), "cnn", "cnn"))
        assert set(archive.checkpoints().run) == {"old", "cnn"} and archive.check().empty


def test_a_crash_leaves_the_old_or_the_new_cnn(tmp_path):
    from tests.archive_faults import assert_intact, netarchive_command

    spec = "tests/models.py:cnn"
    sources = {}
    for seed in (1, 2):
        model = pruned("cnn", seed=seed)
        sources[seed] = tmp_path / f"cnn{seed}.pt"
        torch.save(model.state_dict(), sources[seed])
    store = tmp_path / "archive"
    common = ["--run", "c", "--level", 0, "--model", spec, "--input-shape", "1,8,8"]
    status, output = netarchive_command(store, "ingest", sources[1], *common)
    assert status == 0, output
    for point in ("synapses", "commit", "checkpoint", "publish", "swap"):
        status, output = netarchive_command(store, "ingest", sources[2], *common, "--replace", crash_at=point)
        from netarchive.loaders import load

        candidates = [load([sources[s]], run="c", level=0, model=spec, input_shape=(1, 8, 8))[0] for s in (1, 2)]
        held = assert_intact(store, {("c", 0): candidates})
        with netarchive.open(store, read_only=True) as archive:
            back = archive.checkpoint("c", 0)
        assert_same_network(back, held[("c", 0)])
        assert archive is not None


# -- the Neo4j server only --------------------------------------------------------------------------
OLD_NEO4J_STATEMENTS = (
    "CREATE CONSTRAINT neuron_key IF NOT EXISTS FOR (n:Neuron) REQUIRE (n.run, n.level, n.layer, n.`index`) IS UNIQUE",
    "MERGE (r:Run {name: $run}) SET r.activation = 'relu' CREATE (r)-[:HAS_CHECKPOINT]->(c:Checkpoint {run: $run, level: 0}) "
    "SET c.neurons = $neurons, c.edges = $edges, c.sparsity = $sparsity, c.layer_names = $names, c.widths = $widths, "
    "c.layer_synapses = $per, c.written = 'old', c.architecture_source = 'assumed sequential'",
    "UNWIND range(0, size($group) - 1) AS i CREATE (:Neuron {run: $run, level: 0, layer: $group[i], `index`: $index[i], bias: $bias[i]})",
    "UNWIND range(0, size($src) - 1) AS i MATCH (a:Neuron {run: $run, level: 0, layer: $la[i], `index`: $src[i]}) "
    "MATCH (b:Neuron {run: $run, level: 0, layer: $la[i] + 1, `index`: $dst[i]}) CREATE (a)-[:SYNAPSE {w: $w[i]}]->(b)",
)
"""How the server archive was written before issue 14 (neurons numbered by ``layer``, synapses {w})."""


def test_a_server_archive_of_the_previous_schema_is_upgraded_by_init(neo4j_store):
    from tests.neo4j_server import run_name

    run = run_name()
    old = random_checkpoint((6, 5, 3), density=0.6, seed=3, run=run)
    group = old.neuron_groups()
    bias = [None] * old.widths[0] + [0.25] * (old.neurons - old.widths[0])
    src, dst, w, layer = old.edge_list()
    offsets = np.asarray(old.offsets)
    params = {
        "run": run, "neurons": old.neurons, "edges": old.edges, "sparsity": old.sparsity, "names": list(old.layer_names),
        "widths": list(old.widths), "per": [l.edges for l in old.layers], "group": group.tolist(),
        "index": (np.arange(old.neurons) - offsets[group]).tolist(), "bias": bias, "la": layer.tolist(),
        "src": (src - offsets[layer]).tolist(), "dst": (dst - offsets[layer + 1]).tolist(), "w": w.astype(float).tolist(),
    }
    for statement in OLD_NEO4J_STATEMENTS:
        neo4j_store._write(statement, **{k: v for k, v in params.items() if f"${k}" in statement})
    with pytest.raises(netarchive.errors.StoreError, match="`netarchive init` upgrades it"):
        neo4j_store.read(run, 0)
    neo4j_store.init()
    back = neo4j_store.read(run, 0)
    assert [kernel_weights(l) for l in back.layers] == [kernel_weights(l) for l in old.layers]
    assert all(l.bias.tolist() == [0.25] * l.outputs for l in back.layers)
    assert neo4j_store.cypher("MATCH (n:Neuron) WHERE n.layer IS NOT NULL RETURN count(n) AS n").n.item() == 0
    assert Archive(neo4j_store).check().empty


@pytest.mark.parametrize("name", ["kernel_offsets", "skip_connections", "strongest_synapses", "checkpoint_layers"])
def test_cypher_files_on_a_resnet_block_give_the_same_rows_on_both_backends(neo4j_store, tmp_path, name):
    from pathlib import Path

    from netarchive.cli.query import browser_params
    from tests.neo4j_server import run_name

    run = run_name()
    net = traced(pruned("basic_block"), "basic_block", run)
    text, params = browser_params((Path(__file__).resolve().parents[1] / "cypher" / f"{name}.cypher").read_text())
    params = {**params, "run": run, "level": 0, "layer": 3}
    answers = []
    with netarchive.open(tmp_path / "archive") as embedded:
        for archive in (embedded, Archive(neo4j_store)):
            archive.write(net)
            answers.append(archive.cypher(text, **params))
    assert len(answers[1]) > 0
    pd.testing.assert_frame_equal(answers[0], answers[1], check_dtype=False, rtol=1e-6)
