"""The Neo4j store end to end over Bolt against a real Neo4j 5 server: the store contract of the embedded
archive (batching, transactions, type conversion, write-back) and the CLI on the server.

The server is the session's (``neo4j_server``, tests/neo4j_server.py: tools/neo4j/start.sh); what only a
server has (restarts, crashes, memory limits, constraints) is in tests/test_neo4j_server.py.
"""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from netarchive.cli import cli
from netarchive.errors import AlreadyArchived, DamagedArchive, InputError, NotFound, StoreError
from netarchive.store import neo4j as neo4j_store
from netarchive.store.neo4j import Neo4jStore
from tests.conftest import edge_set, random_checkpoint, shared_queries
from tests.neo4j_server import run_name

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(neo4j_server):
    return neo4j_server


@pytest.fixture
def store(neo4j_store):
    return neo4j_store


def sample(run, level=0, seed=0, **options):
    options.setdefault("input_shape", (1, 4, 4))
    return random_checkpoint((16, 8, 6, 4), density=0.5, seed=seed, run=run, level=level, **options)


# -- round trips -----------------------------------------------------------------------------------
def test_write_read_round_trip_in_one_transaction(store):
    run = run_name()
    original = sample(run, metrics={"accuracy": 0.97, "loss": 0.1})
    store.write(original)
    back = store.read(run, 0)
    assert edge_set(back) == edge_set(original)
    assert back.widths == original.widths and back.layer_names == original.layer_names
    assert back.input_shape == (1, 4, 4) and back.metrics == {"accuracy": 0.97, "loss": 0.1}
    assert back.layers[0].w.dtype == np.float32 and back.layers[0].src.dtype == np.int32
    row = store.checkpoints(run).iloc[0]
    assert (row["run"], row["level"], row["layers"], row["neurons"], row["edges"]) == (run, 0, 3, 34, original.edges)
    assert row["sparsity"] == pytest.approx(original.sparsity)


def test_batched_write_round_trip(store):
    store.single_transaction, store.batch = 0, 7  # one transaction per 7-synapse batch
    run = run_name()
    original = random_checkpoint((16, 8, 6, 4), density=0.5, seed=3, run=run, level=2)
    store.write(original)
    back = store.read(run, 2)
    assert edge_set(back) == edge_set(original) and back.input_shape is None
    assert store.levels(run) == [2]


def test_pixel_coordinates_and_meta(store):
    run = run_name()
    from dataclasses import replace

    store.write(replace(sample(run), meta={"dataset": "mnist", "seed": "3"}))
    assert store.read(run, 0).meta == {"dataset": "mnist", "seed": "3"}
    pixels = store.cypher(
        "MATCH (n:Neuron {run: $run, level: 0, `group`: 0}) WHERE n.`index` = 6 RETURN n.channel AS c, n.y AS y, n.x AS x",
        {"run": run},
    )
    assert pixels.to_dict("records") == [{"c": 0, "y": 1, "x": 2}]
    hidden = store.cypher("MATCH (n:Neuron {run: $run, level: 0, `group`: 1}) RETURN count(n.y) AS with_y", {"run": run})
    assert hidden["with_y"].tolist() == [0]


def test_unknown_run_and_level(store):
    run = run_name()
    with pytest.raises(NotFound, match="no run named"):
        store.read(run, 0)
    store.write(sample(run))
    with pytest.raises(NotFound, match="has no level 5"):
        store.read(run, 5)
    with pytest.raises(NotFound):
        store.delete(run, 5)


# -- replace, delete, atomicity --------------------------------------------------------------------
def test_refuses_duplicate_and_replaces(store):
    run = run_name()
    store.write(sample(run, seed=1))
    with pytest.raises(AlreadyArchived):
        store.write(sample(run, seed=2))
    replacement = sample(run, seed=2)
    store.write(replacement, replace=True)
    assert edge_set(store.read(run, 0)) == edge_set(replacement)
    store.single_transaction, store.batch = 0, 5
    again = sample(run, seed=4)
    store.write(again, replace=True)
    assert edge_set(store.read(run, 0)) == edge_set(again)
    neurons = store.cypher("MATCH (n:Neuron {run: $run}) RETURN count(n) AS n", {"run": run})
    assert neurons["n"].tolist() == [34]


def test_delete_level_and_run(store):
    run = run_name()
    for level in (0, 1, 2):
        store.write(sample(run, level=level, seed=level))
    store.batch = 4
    assert store.delete(run, 1) == 1
    assert store.levels(run) == [0, 2]
    assert store.delete(run) == 2
    with pytest.raises(NotFound):
        store.levels(run)
    left = store.cypher("MATCH (n:Neuron {run: $run}) RETURN count(n) AS n", {"run": run})
    assert left["n"].tolist() == [0]


def interrupt_after(monkeypatch, statements: int) -> None:
    """Make every write raise KeyboardInterrupt (as Ctrl-C would) after sending ``statements`` statements."""
    original = neo4j_store._checkpoint_statements

    def failing(checkpoint, **options):
        for count, statement in enumerate(original(checkpoint, **options)):
            if count == statements:
                raise KeyboardInterrupt
            yield statement

    monkeypatch.setattr(neo4j_store, "_checkpoint_statements", failing)


def test_failed_single_transaction_write_leaves_nothing(store, monkeypatch):
    run = run_name()
    store.write(sample(run, level=0))
    interrupt_after(monkeypatch, 6)
    with pytest.raises(KeyboardInterrupt):
        store.write(sample(run, level=1, seed=5))
    with pytest.raises(KeyboardInterrupt):
        store.write(sample(run, level=0, seed=5), replace=True)
    monkeypatch.undo()
    assert store.levels(run) == [0]
    assert edge_set(store.read(run, 0)) == edge_set(sample(run, level=0))
    assert store.cypher("MATCH (n:Neuron {run: $run, level: 1}) RETURN count(n) AS n", {"run": run})["n"].tolist() == [0]


def leave_unfinished(store, monkeypatch, run: str, level: int) -> None:
    """A batched write of (run, level) killed half-way, its cleanup failing too (as a crash would)."""
    store.single_transaction, store.batch = 0, 5
    monkeypatch.setattr(store, "_delete_batched", lambda *args: (_ for _ in ()).throw(RuntimeError("killed")))
    interrupt_after(monkeypatch, 8)
    with pytest.raises(KeyboardInterrupt):
        store.write(sample(run, level=level))
    monkeypatch.undo()


def test_incomplete_checkpoint_is_hidden_and_cleaned_up(store, monkeypatch):
    """A batched write killed half-way leaves a marked checkpoint; the next write removes it."""
    run = run_name()
    leave_unfinished(store, monkeypatch, run, 0)
    assert store.checkpoints(run).empty
    with pytest.raises(NotFound):
        store.read(run, 0)
    marked = store.cypher("MATCH (c:Checkpoint {run: $run}) RETURN c.incomplete AS incomplete", {"run": run})
    assert marked["incomplete"].tolist() == [True]
    store.write(sample(run, level=1))
    assert store.levels(run) == [1]
    assert store.cypher("MATCH (n:Neuron {run: $run, level: 0}) RETURN count(n) AS n", {"run": run})["n"].tolist() == [0]


# -- queries and write-back ------------------------------------------------------------------------
def test_cypher_returns_a_frame_with_plain_values(store):
    run = run_name()
    store.write(sample(run))
    frame = store.cypher(
        "MATCH (c:Checkpoint {run: $run}) RETURN c.level AS level, c.widths AS widths, c", {"run": run}
    )
    assert frame["level"].tolist() == [0] and frame["widths"].tolist() == [[16, 8, 6, 4]]
    assert frame["c"][0]["run"] == run


def test_cypher_errors_are_store_errors(store):
    with pytest.raises(StoreError):
        store.cypher("MATCH (n:Neuron RETURN n")


def test_cypher_is_read_only(store):
    with pytest.raises(StoreError):
        store.cypher("CREATE (:Neuron {run: 'test-write'})")


def test_set_neuron_properties(store):
    run = run_name()
    checkpoint = sample(run)
    store.write(checkpoint)
    store.batch = 5
    degree = np.asarray(checkpoint.adjacency().getnnz(axis=0) + checkpoint.adjacency().getnnz(axis=1), dtype=np.int64)
    store.set_neuron_properties(run, 0, {"degree": degree, "score": np.linspace(0, 1, checkpoint.neurons)})
    store.set_neuron_properties(run, 0, {"degree": degree * 2})
    frame = store.cypher(
        "MATCH (n:Neuron {run: $run, level: 0}) RETURN n.`group` AS layer, n.`index` AS i, n.degree AS degree, n.score AS score "
        "ORDER BY layer, i",
        {"run": run},
    )
    assert frame["degree"].tolist() == (degree * 2).tolist()
    assert np.allclose(frame["score"], np.linspace(0, 1, checkpoint.neurons))
    with pytest.raises(InputError):
        store.set_neuron_properties(run, 0, {"layer": degree})
    with pytest.raises(NotFound):
        store.set_neuron_properties(run, 9, {"degree": degree})


def test_set_synapse_flag(store):
    run = run_name()
    checkpoint = sample(run)
    store.write(checkpoint)
    chosen = {(l, int(layer.src[0]), int(layer.dst[0])) for l, layer in enumerate(checkpoint.layers)}
    layer, src, dst = (np.array(column) for column in zip(*sorted(chosen)))
    store.set_synapse_flag(run, 0, "in_msf", layer, src, dst)
    store.set_synapse_flag(run, 0, "in_msf", layer, src, dst)
    frame = store.cypher(
        "MATCH (a:Neuron {run: $run, level: 0})-[s:SYNAPSE]->(b:Neuron) RETURN a.`group` AS l, a.`index` AS s, b.`index` AS d, s.in_msf AS f",
        {"run": run},
    )
    assert len(frame) == checkpoint.edges
    assert {(r.l, r.s, r.d) for r in frame.itertuples() if r.f} == chosen
    assert frame["f"].map(type).eq(bool).all()


def test_cypher_files_run_on_the_server(store):
    from netarchive.cli.query import browser_params

    run = run_name()
    for level in (0, 1):
        store.write(sample(run, level=level, seed=level))
    results = {}
    for path in shared_queries():
        text, params = browser_params(path.read_text())
        results[path.stem] = store.cypher(text, {**params, "run": run, "to": 1})
    layers = results["checkpoint_layers"]
    assert layers["neurons"].tolist() == [16, 8, 6, 4]
    assert layers["synapses_out"].tolist()[:3] == [layer.edges for layer in sample(run).layers]
    assert len(results["strongest_synapses"]) <= 25


# -- opening errors --------------------------------------------------------------------------------
def test_unreachable_server():
    with pytest.raises(StoreError, match="cannot reach a Neo4j server"):
        Neo4jStore(f"bolt://127.0.0.1:{_free_port()}", user="neo4j", password="x")
    done = CliRunner().invoke(cli, ["--store", f"neo4j://127.0.0.1:{_free_port()}", "--password", "x", "ls"])
    assert done.exit_code == 1 and done.output.startswith("error: cannot reach") and done.output.count("\n") == 1


def test_wrong_credentials(server):
    uri, user, database = server.uri, server.user, server.database
    with pytest.raises(StoreError, match="refused the credentials"):
        Neo4jStore(uri, user=user, password="wrong-password", database=database)


def test_missing_database(server):
    uri, user, password = server.uri, server.user, server.password
    with pytest.raises(StoreError, match="no database 'nosuchdb'"):
        Neo4jStore(uri, user=user, password=password, database="nosuchdb")


def test_old_server_is_refused(server, monkeypatch):
    uri, user, password, database = server.uri, server.user, server.password, server.database
    monkeypatch.setattr(neo4j_store, "MIN_SERVER_MAJOR", 99)
    with pytest.raises(StoreError, match="needs Neo4j 99 or later"):
        Neo4jStore(uri, user=user, password=password, database=database)


def test_read_only_store_refuses_writes(server):
    uri, user, password, database = server.uri, server.user, server.password, server.database
    with Neo4jStore(uri, user=user, password=password, database=database, read_only=True) as store:
        with pytest.raises(StoreError, match="read-only"):
            store.write(sample(run_name()))


# -- the CLI ---------------------------------------------------------------------------------------
def test_cli_on_the_server(server, store, tmp_path):
    uri, user, password, database = server.uri, server.user, server.password, server.database
    run = run_name()
    store.write(sample(run))
    base = ["--store", uri, "--user", user, "--password", password, "--database", database]
    listing = CliRunner().invoke(cli, [*base, "ls", "--format", "json"])
    assert listing.exit_code == 0, listing.output
    assert run in listing.output
    query = CliRunner().invoke(
        cli, [*base, "query", "cypher", "-f", str(ROOT / "cypher" / "checkpoint_layers.cypher"), "--param", f"run={run}", "--format", "csv"]
    )
    assert query.exit_code == 0, query.output
    assert query.output.splitlines()[0].startswith("group,neurons")
    wrong = CliRunner().invoke(cli, ["--store", uri, "--user", user, "--password", "nope", "ls"])
    assert wrong.exit_code == 1 and wrong.output.count("\n") == 1 and "refused the credentials" in wrong.output


def test_cli_ingest_export_rm_on_the_server(server, store, tmp_path):
    uri, user, password, database = server.uri, server.user, server.password, server.database
    run = run_name()
    checkpoint = sample(run, level=0)
    np.savez(tmp_path / "level_0.npz", **{layer.name: layer.dense() for layer in checkpoint.layers})
    base = ["--store", uri, "--user", user, "--password", password, "--database", database]
    ingest = CliRunner().invoke(cli, [*base, "ingest", str(tmp_path / "level_0.npz"), "--run", run, "--level", "0", "--input-shape", "1,4,4"])
    assert ingest.exit_code == 0, ingest.output
    assert edge_set(store.read(run, 0)) == edge_set(checkpoint)
    again = CliRunner().invoke(cli, [*base, "ingest", str(tmp_path / "level_0.npz"), "--run", run, "--level", "0"])
    assert again.exit_code == 1 and "already has level(s) 0" in again.output
    export = CliRunner().invoke(cli, [*base, "export", str(tmp_path / "out"), "--run", run])
    assert export.exit_code == 0, export.output
    removed = CliRunner().invoke(cli, [*base, "rm", "--run", run, "--yes"])
    assert removed.exit_code == 0 and "removed 1 checkpoint" in removed.output
    assert store.checkpoints(run).empty


def test_schema_file_matches_the_store():
    text = (ROOT / "cypher" / "schema.cypher").read_text()
    statements = [line.rstrip(";") for line in text.splitlines() if line.startswith("CREATE ")]
    assert statements == list(neo4j_store.SCHEMA_CYPHER)


def test_synapse_batches_group_by_target_in_any_edge_order():
    layer = sample("r").layers[0]
    order = np.random.default_rng(1).permutation(layer.edges)
    shuffled = type(layer)(layer.name, layer.inputs, layer.outputs, layer.src[order], layer.dst[order], layer.w[order])
    rows = set()
    for batch in neo4j_store._layer_batches(shuffled, 5):
        assert len(batch["src"]) <= 5 and batch["bounds"][-1] == len(batch["src"])
        for j, target in enumerate(batch["targets"]):
            for i in range(batch["bounds"][j], batch["bounds"][j + 1]):
                rows.add((batch["src"][i], target, batch["w"][i]))
    assert rows == {(int(s), int(d), float(w)) for s, d, w in zip(layer.src, layer.dst, layer.w)}


def test_batched_write_of_unsorted_edges(store):
    store.single_transaction, store.batch = 0, 6
    run = run_name()
    base = sample(run)
    rng = np.random.default_rng(2)
    layers = []
    for layer in base.layers:
        order = rng.permutation(layer.edges)
        layers.append(type(layer)(layer.name, layer.inputs, layer.outputs, layer.src[order], layer.dst[order], layer.w[order]))
    from dataclasses import replace

    shuffled = replace(base, layers=tuple(layers))
    store.write(shuffled)
    assert edge_set(store.read(run, 0)) == edge_set(base)


def test_cli_init_on_the_server(server):
    uri, user, password, database = server.uri, server.user, server.password, server.database
    done = CliRunner().invoke(cli, ["--store", uri, "--user", user, "--password", password, "--database", database, "init"])
    assert done.exit_code == 0, done.output
    assert f"archive ready at {uri}" in done.output


def test_biases_and_activation_round_trip(store):
    from netarchive.model import Checkpoint, Layer

    run = run_name()
    first = Layer.from_dense("a.weight", np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]]), bias=np.array([0.5, 0.0, -0.25]))
    second = Layer.from_dense("b.weight", np.array([[1.0, 1.0, 1.0]]))
    store.write(Checkpoint(run, 0, (first, second), activation="tanh"))
    back = store.read(run, 0)
    assert back.layers[0].bias.tolist() == [0.5, 0.0, -0.25] and back.layers[1].bias is None
    assert back.activation == "tanh" and back.meta == {}
    store.set_activation(run, "gelu")
    assert store.read(run, 0).activation == "gelu"
    biases = store.cypher("MATCH (n:Neuron {run: $run, `group`: 1}) RETURN n.bias AS b ORDER BY n.`index`", {"run": run})
    assert biases["b"].tolist() == [0.5, 0.0, -0.25]
    with pytest.raises(NotFound, match="no run named"):
        store.set_activation(run_name(), "relu")
    with pytest.raises(InputError, match="unknown activation"):
        store.set_activation(run, "swish")


def test_set_metrics(store):
    run = run_name()
    store.write(sample(run, metrics={"accuracy": 0.5}))
    store.set_metrics(run, 0, {"accuracy": 0.75, "loss": 0.2})
    assert store.read(run, 0).metrics == {"accuracy": 0.75, "loss": 0.2}
    row = store.checkpoints(run).iloc[0]
    assert (row["accuracy"], row["loss"]) == (0.75, 0.2)
    with pytest.raises(NotFound):
        store.set_metrics(run, 4, {"loss": 1.0})
    with pytest.raises(InputError):
        store.set_metrics(run, 0, {"edges": 1.0})


def test_set_input_shape(store):
    run = run_name()
    for level in (0, 1):
        store.write(sample(run, level=level, seed=level, input_shape=None))
    with pytest.raises(InputError, match="has 12 pixels"):
        store.set_input_shape(run, (1, 3, 4))
    store.set_input_shape(run, (1, 2, 8), level=1)
    assert store.read(run, 0).input_shape is None and store.read(run, 1).input_shape == (1, 2, 8)
    store.set_input_shape(run, (4, 2, 2))
    assert store.read(run, 0).input_shape == (4, 2, 2)
    pixel = store.cypher(
        "MATCH (n:Neuron {run: $run, level: 0, `group`: 0}) WHERE n.`index` = 7 RETURN n.channel AS c, n.y AS y, n.x AS x", {"run": run}
    )
    assert pixel.to_dict("records") == [{"c": 1, "y": 1, "x": 1}]
    with pytest.raises(NotFound):
        store.set_input_shape(run, (4, 2, 2), level=3)
    with pytest.raises(NotFound):
        store.set_input_shape(run_name(), (4, 2, 2))


# -- verification and check ------------------------------------------------------------------------
def problems_of_run(store, run, repair=False):
    table = store.check(repair=repair)
    return [(row.problem, None if row.level is pd.NA else int(row.level), row.repaired)
            for row in table.itertuples() if row.run == run]


def test_reads_verify_and_check_repairs_a_damaged_checkpoint(store):
    run = run_name()
    store.write(sample(run, level=0))
    store.write(sample(run, level=1, seed=1))
    assert store.read(run, 0).layers[0].edges == store.checkpoints(run)["edges"].iloc[0] - sum(
        layer.edges for layer in sample(run).layers[1:])
    store._write("MATCH (a:Neuron {run: $run, level: 0, `group`: 1})-[s:SYNAPSE]->() DELETE s", run=run)
    with pytest.raises(DamagedArchive, match=rf"run '{run}' level 0 is damaged: .*`netarchive check`"):
        store.read(run, 0)
    assert problems_of_run(store, run) == [("damaged-checkpoint", 0, False)]
    assert problems_of_run(store, run, repair=True) == [("damaged-checkpoint", 0, True)]
    assert problems_of_run(store, run) == [] and store.levels(run) == [1]


def test_check_lists_unfinished_checkpoints_orphans_and_empty_runs(store, monkeypatch):
    run, other = run_name(), run_name()
    leave_unfinished(store, monkeypatch, run, 3)
    with pytest.raises(NotFound, match="level 3 was left unfinished by an interrupted write"):
        store.read(run, 3)
    assert [tuple(row) for row in store.unfinished().itertuples(index=False) if row.run == run] == [(run, 3)]
    store._write("CREATE (:Neuron {run: $run, level: 7, `group`: 0, `index`: 0})", run=other)
    store._write("CREATE (:Run {name: $run})", run=other)
    assert problems_of_run(store, run) == [("unfinished-checkpoint", 3, False)]
    assert sorted(problems_of_run(store, other)) == [("empty-run", None, False), ("orphan-neurons", 7, False)]
    store.check(repair=True)
    assert problems_of_run(store, run) == problems_of_run(store, other) == []
    assert store.cypher("MATCH (n:Neuron) WHERE n.run IN $runs RETURN count(n) AS n", {"runs": [run, other]})["n"].tolist() == [0]
