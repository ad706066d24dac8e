"""What only a real Neo4j server has: its schema, read-only transactions, authentication, databases,
versions, memory limits, restarts and crashes (``kill -9`` of the JVM in the middle of a write).

The tests marked ``neo4j_restart`` run after all others (tests/neo4j_server.py). Each crash test ends with :func:`check_archive`, the one place that says what a consistent archive is
(every visible checkpoint whole, nothing of a failed write visible); `netarchive check` joins it there.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
from click.testing import CliRunner

from netarchive.cli import cli
from netarchive.errors import NotFound, StoreError
from netarchive.model import Checkpoint, Layer
from netarchive.store import neo4j as neo4j_store
from tests.conftest import edge_set, random_checkpoint
from tests.neo4j_server import run_name
from tests.test_neo4j_store import sample


@pytest.fixture
def store(neo4j_store):
    return neo4j_store


def check_archive(store, run: str, expected: dict[int, object], hidden: tuple[int, ...] = ()) -> None:
    """The archive holds exactly ``expected`` (level -> Checkpoint) of ``run``, each whole; the ``hidden``
    levels exist only as incomplete-marked leftovers that no reader sees."""
    assert store.levels(run) == sorted(expected)
    for level, checkpoint in expected.items():
        assert edge_set(store.read(run, level)) == edge_set(checkpoint)
    counts = store.cypher(
        "MATCH (c:Checkpoint {run: $run}) OPTIONAL MATCH (n:Neuron {run: $run, level: c.level}) "
        "WITH c, count(n) AS neurons RETURN c.level AS level, c.incomplete AS incomplete, c.neurons = neurons AS whole "
        "ORDER BY level",
        {"run": run},
    )
    assert [(r.level, r.incomplete, r.whole) for r in counts.itertuples()] == sorted(
        [(level, None, True) for level in expected] + [(level, True, r.whole) for level in hidden for r in counts.itertuples() if r.level == level]
    )
    orphans = store.cypher(
        "MATCH (n:Neuron {run: $run}) WHERE NOT EXISTS { MATCH (c:Checkpoint {run: $run, level: n.level}) } "
        "RETURN count(n) AS n",
        {"run": run},
    )
    assert orphans["n"].tolist() == [0]
    problems = store.check()
    found = sorted((row.problem, int(row.level)) for row in problems.itertuples() if row.run == run)
    assert found == [("unfinished-checkpoint", level) for level in sorted(hidden)]  # `netarchive check` names them


# -- schema and read-only queries ------------------------------------------------------------------
def test_constraints_and_indexes_are_online(store):
    store.init()
    constraints = store.cypher("SHOW CONSTRAINTS YIELD name, type, labelsOrTypes, properties RETURN *")
    assert {(r.name, r.type, tuple(r.labelsOrTypes), tuple(r.properties)) for r in constraints.itertuples()} >= {
        ("run_name", "UNIQUENESS", ("Run",), ("name",)),
        ("checkpoint_key", "UNIQUENESS", ("Checkpoint",), ("run", "level")),
        ("neuron_group_key", "UNIQUENESS", ("Neuron",), ("run", "level", "group", "index")),
    }
    indexes = store.cypher("SHOW INDEXES YIELD name, state, properties WHERE name STARTS WITH 'neuron_' RETURN *")
    assert {(r.name, r.state, tuple(r.properties)) for r in indexes.itertuples()} == {
        ("neuron_group_key", "ONLINE", ("run", "level", "group", "index")),
        ("neuron_group", "ONLINE", ("run", "level", "group")),
        ("neuron_checkpoint", "ONLINE", ("run", "level")),
    }
    run = run_name()
    store.write(sample(run))
    with pytest.raises(StoreError, match="already exists with"):
        store._write("CREATE (:Neuron {run: $run, level: 0, `group`: 1, `index`: 0})", run=run)


@pytest.mark.parametrize("statement", [
    "CREATE (:Neuron {run: 'test-written'})",
    "MATCH (c:Checkpoint) SET c.edges = 0",
    "MATCH (c:Checkpoint) DETACH DELETE c",
    "CREATE INDEX written IF NOT EXISTS FOR (n:Neuron) ON (n.bias)",
    "CALL apoc.create.node(['Neuron'], {run: 'test-written'}) YIELD node RETURN node",
])
def test_query_cypher_cannot_write(store, neo4j_server, statement):
    run = run_name()
    store.write(sample(run))
    with pytest.raises(StoreError):
        store.cypher(statement)
    done = CliRunner().invoke(cli, [*neo4j_server.cli_args, "query", "cypher", statement])
    assert done.exit_code == 1 and done.output.startswith("error: ") and done.output.count("\n") == 1
    check_archive(store, run, {0: sample(run)})
    assert store.cypher("MATCH (n {run: 'test-written'}) RETURN count(n) AS n")["n"].tolist() == [0]
    assert store.cypher("SHOW INDEXES YIELD name WHERE name = 'written' RETURN name").empty


# -- opening errors ----------------------------------------------------------------------------------
def test_server_older_than_5_is_one_line(neo4j_server, monkeypatch):
    """A 4.4 server answers dbms.components() with its kernel version; the store refuses it."""
    monkeypatch.setattr(
        neo4j_store, "COMPONENTS_CYPHER",
        "RETURN 'Neo4j Kernel' AS name, ['4.4.26'] AS versions, 'community' AS edition",
    )
    with pytest.raises(StoreError, match="runs Neo4j 4.4.26; netarchive needs Neo4j 5 or later"):
        neo4j_server.store()
    done = CliRunner().invoke(cli, [*neo4j_server.cli_args, "ls"])
    assert done.exit_code == 1 and done.output.count("\n") == 1 and "needs Neo4j 5 or later" in done.output


def test_opening_errors_are_one_line(neo4j_server):
    base = neo4j_server.cli_args
    for args, message in [
        ([*base[:4], "--password", "wrong-password", "ls"], "refused the credentials of user 'neo4j'"),
        ([*base[:6], "--database", "nosuchdb", "ls"], "has no database 'nosuchdb'"),
    ]:
        done = CliRunner().invoke(cli, args)
        assert done.exit_code == 1, done.output
        assert done.output.startswith("error: ") and message in done.output and done.output.count("\n") == 1


# -- restarts and crashes ----------------------------------------------------------------------------
def dense_checkpoint(widths, run: str, level: int) -> Checkpoint:
    """Every weight of each layer kept (a large checkpoint, built fast)."""
    rng = np.random.default_rng(0)
    layers = []
    for l, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        dst, src = np.divmod(np.arange(n_in * n_out, dtype=np.int64), n_in)
        layers.append(Layer(f"fc{l}.weight", n_in, n_out, src, dst, rng.normal(size=n_in * n_out).astype(np.float32)))
    return Checkpoint(run, level, tuple(layers))


@pytest.mark.neo4j_restart
def test_server_killed_mid_write_and_restarted_between_commands(neo4j_server, store, monkeypatch, tmp_path):
    """One ``kill -9`` of the JVM while two writes are under way, and the one restart after it, test what a
    crash and a restart between two commands can break (each start of the server costs tens of seconds on
    two cores, so the suite has this one).

    The writes: a CLI ingest in one transaction, its checkpoint and neurons sent and its synapses under
    way, and a checkpoint of more than 2 M synapses, written one transaction per batch under the
    ``incomplete`` mark, three batches committed. Afterwards the first left nothing, the second stays
    hidden until the next write removes it, and both levels can be written again.

    The commands: an ingest before the kill, a command while the server is down (one line), a restart with
    a small per-transaction memory limit, a command: the archive is as it was (the store opened before
    the restart reconnects by itself). Then a write over the limit is one line and writes nothing, and the
    same checkpoint in small transactions fits."""
    run, ingested, batched = run_name(), run_name(), run_name()
    kept = {each: sample(each, level=0) for each in (run, ingested, batched)}
    np.savez(tmp_path / "level_0.npz", **{layer.name: layer.dense() for layer in kept[run].layers})
    first = CliRunner().invoke(cli, [*neo4j_server.cli_args, "ingest", str(tmp_path / "level_0.npz"), "--run", run, "--level", "0"])
    assert first.exit_code == 0, first.output
    for checkpoint in (kept[ingested], kept[batched]):
        store.write(checkpoint)
    new = random_checkpoint((64, 32, 16, 10), density=0.8, seed=7, run=ingested, level=1)
    np.savez(tmp_path / "level_1.npz", **{layer.name: layer.dense() for layer in new.layers})
    large = dense_checkpoint((1024, 1024, 1024), run=batched, level=1)
    assert large.edges > 2_000_000 and large.edges > store.single_transaction
    ingest_open, killed = threading.Event(), threading.Event()
    original = neo4j_store._checkpoint_statements

    def killing(checkpoint, **options):
        for count, each in enumerate(original(checkpoint, **options)):
            if checkpoint.run == ingested and count == 6:  # one transaction open, synapses under way
                ingest_open.set()
                killed.wait(300)
            if checkpoint.run == batched and count == len(checkpoint.widths) + 4:  # 3 batches committed
                neo4j_server.kill()
                killed.set()
            yield each

    monkeypatch.setattr(neo4j_store, "_checkpoint_statements", killing)
    done = {}
    ingest = threading.Thread(target=lambda: done.update(result=CliRunner().invoke(
        cli, [*neo4j_server.cli_args, "ingest", str(tmp_path / "level_1.npz"), "--run", ingested, "--level", "1"])))
    ingest.start()
    assert ingest_open.wait(300)
    with pytest.raises(StoreError, match="lost the Neo4j server"):
        store.write(large)
    ingest.join(300)
    monkeypatch.undo()
    output = done["result"].output
    assert done["result"].exit_code == 1 and output.startswith("error: lost the Neo4j server") and output.count("\n") == 1
    down = CliRunner().invoke(cli, [*neo4j_server.cli_args, "ls"])
    assert down.exit_code == 1 and down.output.startswith("error: cannot reach a Neo4j server") and down.output.count("\n") == 1

    neo4j_server.start("db.memory.transaction.max=8m")
    second = CliRunner().invoke(cli, [*neo4j_server.cli_args, "ls", "--run", run, "--format", "csv"])
    assert second.exit_code == 0, second.output
    assert second.output.splitlines()[1].startswith(f"{run},0,3,34,{kept[run].edges},")
    check_archive(store, run, {0: kept[run]})  # the store opened before the restart reconnects by itself
    check_archive(store, ingested, {0: kept[ingested]})
    check_archive(store, batched, {0: kept[batched]}, hidden=(1,))
    with pytest.raises(NotFound):
        store.read(batched, 1)

    over = random_checkpoint((256, 128, 64, 10), density=0.9, seed=9, run=run, level=1)
    np.savez(tmp_path / "level_1.npz", **{layer.name: layer.dense() for layer in over.layers})
    done = CliRunner().invoke(cli, [*neo4j_server.cli_args, "ingest", str(tmp_path / "level_1.npz"), "--run", run, "--level", "1"])
    assert done.exit_code == 1 and done.output.count("\n") == 1, done.output
    assert "ran out of transaction memory" in done.output and "nothing of this transaction was written" in done.output
    check_archive(store, run, {0: kept[run]})
    store.single_transaction, store.batch = 0, 500
    store.write(over)
    check_archive(store, run, {0: kept[run], 1: over})

    store.single_transaction, store.batch = 1000, 400
    again = random_checkpoint((64, 64, 32, 10), density=0.9, seed=8, run=batched, level=1)
    assert again.edges > store.single_transaction
    store.write(again)  # batched too; removes the leftover first
    check_archive(store, batched, {0: kept[batched], 1: again})
    store.write(new)
    check_archive(store, ingested, {0: kept[ingested], 1: new})
