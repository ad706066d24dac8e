"""The embedded archive: round trips, replace, delete, atomicity, locking, versions."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import netarchive
import netarchive.store.ladybug as ladybug_store
from netarchive.errors import AlreadyArchived, InputError, NotFound, StoreError
from netarchive.model import Checkpoint
from tests.conftest import edge_set, random_checkpoint


def snapshot(archive):
    """Everything a user can see of the archive, for before/after comparisons."""
    listing = archive.checkpoints()
    return listing.to_dict("records"), {
        (row["run"], row["level"]): edge_set(archive.checkpoint(row["run"], row["level"])) for row in listing.to_dict("records")
    }


def test_round_trip_keeps_every_synapse_and_attribute(archive):
    original = random_checkpoint([12, 7, 5, 3], density=0.4, seed=1, run="seed0", level=2, input_shape=(3, 2, 2),
                                 metrics={"accuracy": 0.91})
    archive.write(original)
    back = archive.checkpoint("seed0", 2)
    assert edge_set(back) == edge_set(original)
    assert back.widths == (12, 7, 5, 3) and back.layer_names == original.layer_names
    assert back.input_shape == (3, 2, 2) and back.metrics == {"accuracy": 0.91}
    row = archive.checkpoints().iloc[0]
    assert (row.run, row.level, row.layers, row.neurons, row.edges) == ("seed0", 2, 3, 27, original.edges)
    assert row.sparsity == pytest.approx(original.sparsity)


def test_graph_schema_in_cypher(archive):
    checkpoint = random_checkpoint([4, 3, 2], density=1.0, seed=2, run="r1", level=0, input_shape=(1, 2, 2))
    archive.write(checkpoint)
    counts = archive.cypher(
        "MATCH (r:Run {name: $run})-[:HAS_CHECKPOINT]->(c:Checkpoint)"
        " MATCH (a:Neuron {run: $run, level: c.level})-[s:SYNAPSE]->(b:Neuron) RETURN a.`group` AS layer, count(s) AS n ORDER BY layer",
        run="r1",
    )
    assert counts.to_dict("list") == {"layer": [0, 1], "n": [12, 6]}
    pixel = archive.cypher("MATCH (n:Neuron {`group`: 0, `index`: 3}) RETURN n.channel AS c, n.y AS y, n.x AS x")
    assert pixel.iloc[0].tolist() == [0, 1, 1]
    w = archive.cypher(
        "MATCH (a:Neuron {`group`: 1, `index`: 2})-[s:SYNAPSE]->(b:Neuron {`index`: 1}) RETURN s.w AS w"
    ).w.item()
    assert w == pytest.approx(checkpoint.layers[1].dense()[1, 2])


def test_existing_level_is_refused_unless_replaced(archive):
    archive.write(random_checkpoint([5, 4], seed=1, level=1))
    with pytest.raises(AlreadyArchived, match="use --replace"):
        archive.write(random_checkpoint([5, 4], seed=2, level=1))
    newer = random_checkpoint([5, 4], seed=3, level=1, metrics={"loss": 0.5})
    archive.write(newer, replace=True)
    assert edge_set(archive.checkpoint("r", 1)) == edge_set(newer)
    assert archive.checkpoints()["loss"].tolist() == [0.5]
    assert archive.cypher("MATCH (n:Neuron) RETURN count(*) AS n").n.item() == 9


@pytest.mark.parametrize("rebuild_factor", [0, 10**9], ids=["delete-rows", "rebuild-table"])
def test_rm_keeps_the_other_checkpoints(archive, monkeypatch, rebuild_factor):
    monkeypatch.setattr(ladybug_store, "REBUILD_FACTOR", rebuild_factor)
    kept = [random_checkpoint([6, 5, 4], seed=s, run=run, level=s) for s, run in [(0, "a"), (1, "a"), (2, "b")]]
    for checkpoint in kept:
        archive.write(checkpoint)
    assert archive.rm("a", 0) == 1
    assert edge_set(archive.checkpoint("a", 1)) == edge_set(kept[1])
    assert edge_set(archive.checkpoint("b", 2)) == edge_set(kept[2])
    assert archive.rm("a") == 1
    with pytest.raises(NotFound, match="no run named 'a'"):
        archive.checkpoint("a", 1)
    assert archive.cypher("MATCH (r:Run) RETURN r.name AS name").name.tolist() == ["b"]
    assert archive.cypher("MATCH ()-[s:SYNAPSE]->() RETURN count(*) AS n").n.item() == kept[2].edges


def test_unknown_run_and_level(archive):
    archive.write(random_checkpoint([3, 2], level=0))
    with pytest.raises(NotFound, match="no run named 'x'"):
        archive.checkpoint("x", 0)
    with pytest.raises(NotFound, match="run 'r' has no level 5"):
        archive.checkpoint("r", 5)
    with pytest.raises(NotFound, match="run 'r' has no level 5"):
        archive.rm("r", 5)


@pytest.mark.parametrize("failure", [RuntimeError("disk full"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_a_failed_write_leaves_nothing(archive, monkeypatch, failure):
    archive.write(random_checkpoint([6, 5], seed=0, level=0))
    before = snapshot(archive)

    def fail(*_):
        raise failure

    monkeypatch.setattr(ladybug_store, "_synapse_table", fail)  # neurons and checkpoint already written
    with pytest.raises(type(failure)):
        archive.write(random_checkpoint([6, 5], seed=1, level=1))
    with pytest.raises(type(failure)):
        archive.write(random_checkpoint([6, 5], seed=1, level=0), replace=True)
    monkeypatch.undo()
    assert snapshot(archive) == before
    assert archive.cypher("MATCH (n:Neuron) RETURN count(*) AS n").n.item() == 11
    archive.write(random_checkpoint([6, 5], seed=1, level=1))  # the archive is still writable


@pytest.mark.parametrize("rebuild_factor", [0, 10**9], ids=["delete-rows", "rebuild-table"])
@pytest.mark.parametrize("failing", ["_swap_in_rebuilt", "_mark_incomplete", "_delete_nodes"])
def test_a_replace_failing_after_its_copy_keeps_old_or_new(archive, monkeypatch, rebuild_factor, failing):
    """Failures after the durable copy (in the publishing commit, or while removing what was replaced):
    the archive holds the old checkpoint or the new one, whole, and once the next write has removed what
    was left, nothing else (no rebuilt table, no unfinished checkpoint)."""
    monkeypatch.setattr(ladybug_store, "REBUILD_FACTOR", rebuild_factor)
    old, new, other = (random_checkpoint([6, 5], seed=seed, level=level) for seed, level in ((0, 0), (2, 0), (1, 1)))
    archive.write(old)
    archive.write(other)

    def fail(*_):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ladybug_store.LadybugStore, failing, fail)
    try:
        archive.write(new, replace=True)
    except RuntimeError:
        pass
    monkeypatch.undo()
    archive.store._remove_leftovers(lambda _: None)  # what the next write does first
    assert archive.unfinished().empty and archive.check().empty
    assert edge_set(archive.checkpoint("r", 0)) in (edge_set(old), edge_set(new))
    assert edge_set(archive.checkpoint("r", 1)) == edge_set(other)
    assert archive.cypher("MATCH (n:Neuron) RETURN count(*) AS n").n.item() == 22


def test_metric_and_meta_names_are_checked(archive):
    with pytest.raises(InputError, match="metric name 'edges' is taken"):
        archive.write(random_checkpoint([3, 2], metrics={"edges": 1.0}))
    with pytest.raises(InputError, match="must be a letter"):
        archive.write(random_checkpoint([3, 2], metrics={"bad name; DROP": 1.0}))
    assert archive.checkpoints().empty


def test_cypher_is_read_only_and_reports_errors(archive):
    from netarchive.store.base import READ_ONLY_MESSAGE

    archive.write(random_checkpoint([3, 2]))
    for statement in ("MATCH (n:Neuron) DELETE n", "CREATE (:Run {name: 'x'})", "MATCH (n:Neuron) SET n.layer = 7",
                      "MERGE (:Run {name: 'y'})", "DROP TABLE Run"):
        with pytest.raises(StoreError) as error:
            archive.cypher(statement)
        assert str(error.value) == READ_ONLY_MESSAGE  # netarchive's words, not the database's
    assert archive.checkpoints()[["run", "neurons"]].values.tolist() == [["r", 5]]
    with pytest.raises(StoreError, match="Parser exception"):
        archive.cypher("MATCH (n:Neuron RETURN n")
    with pytest.raises(StoreError, match="write n.`index`"):
        archive.cypher("MATCH (n:Neuron) RETURN n.index")
    assert archive.cypher("MATCH (n:Neuron) WHERE n.`group` = $l RETURN count(*) AS n", l=1).n.item() == 2


def test_neuron_write_back_overwrites(archive):
    archive.write(random_checkpoint([3, 2], level=0))
    archive.set_neuron_properties("r", 0, {"component": np.array([0, 0, 1, 0, 1])})
    archive.set_neuron_properties("r", 0, {"component": np.array([4, 3, 2, 1, 0])})
    table = archive.cypher("MATCH (n:Neuron) RETURN n.`group` AS l, n.`index` AS i, n.component AS c ORDER BY l, i")
    assert table.c.tolist() == [4, 3, 2, 1, 0]


def test_second_writer_gets_a_clear_message(store_path):
    with netarchive.open(store_path) as archive:
        archive.write(random_checkpoint([3, 2]))
        script = "import netarchive, sys\ntry:\n netarchive.open(sys.argv[1])\nexcept Exception as e: print(e)"
        out = subprocess.run([sys.executable, "-c", script, str(store_path)], capture_output=True, text=True).stdout
        assert "is in use by another netarchive" in out
        reader = "import netarchive, sys\nprint(len(netarchive.open(sys.argv[1], read_only=True).checkpoints()))"
        assert subprocess.run([sys.executable, "-c", reader, str(store_path)], capture_output=True, text=True).stdout.strip() == "1"


def test_archive_from_another_ladybug_version_is_not_opened(store_path):
    netarchive.open(store_path).close()
    versions = store_path / "netarchive.json"
    versions.write_text(json.dumps({**json.loads(versions.read_text()), "ladybug": "0.99.1"}))
    with pytest.raises(StoreError, match=r"written by LadybugDB 0.99.1 .* install `ladybug==0.99.\*`"):
        netarchive.open(store_path)


def test_reading_a_missing_archive(tmp_path):
    with pytest.raises(NotFound, match="no archive at"):
        netarchive.open(tmp_path / "nothing", read_only=True)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(StoreError, match="not a netarchive archive"):
        netarchive.open(tmp_path / "busy")


def test_archive_whose_database_file_is_gone_is_not_silently_recreated(store_path):
    with netarchive.open(store_path) as archive:
        archive.write(random_checkpoint([3, 2]))
    (store_path / "graph.lbdb").unlink()
    for read_only in (True, False):
        with pytest.raises(StoreError, match="has netarchive.json but no graph.lbdb"):
            netarchive.open(store_path, read_only=read_only)
    assert not (store_path / "graph.lbdb").exists()


def test_parquet_export_reads_back_with_pandas(archive, tmp_path):
    a = random_checkpoint([4, 3, 2], seed=1, run="a", level=0, input_shape=(1, 2, 2), metrics={"accuracy": 0.5})
    b = random_checkpoint([4, 3, 2], seed=2, run="b", level=3)
    archive.write(a)
    archive.write(b)
    archive.export(tmp_path / "out")
    edges = pd.read_parquet(tmp_path / "out" / "edges")
    assert set(edges.columns) == {"layer", "src", "dst", "w", "ky", "kx", "run", "level"} and edges.ky.isna().all()
    for checkpoint in (a, b):
        mine = edges[(edges.run == checkpoint.run) & (edges.level.astype(int) == checkpoint.level)]
        assert {(int(r.layer), int(r.src), int(r.dst), float(r.w)) for r in mine.itertuples()} == edge_set(checkpoint)
    neurons = pd.read_parquet(tmp_path / "out" / "neurons")
    pixels = neurons[(neurons.run == "a") & (neurons.group == 0)].sort_values("index")
    assert pixels[["channel", "y", "x"]].astype(int).values.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1]]
    listing = pd.read_parquet(tmp_path / "out" / "checkpoints.parquet")
    assert listing[["run", "level", "edges"]].values.tolist() == [["a", 0, a.edges], ["b", 3, b.edges]]
    archive.rm("b")
    archive.write(random_checkpoint([4, 3, 2], seed=5, run="a", level=0), replace=True)
    archive.export(tmp_path / "out", run="a")  # replaces a's partitions, keeps b's
    edges = pd.read_parquet(tmp_path / "out" / "edges")
    assert len(edges[edges.run == "a"]) == random_checkpoint([4, 3, 2], seed=5).edges
    assert len(edges[edges.run == "b"]) == b.edges


def test_biases_and_activation_round_trip(archive):
    from netarchive.model import Checkpoint, Layer

    first = Layer.from_dense("a.weight", np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]]), bias=np.array([0.5, 0.0, -0.25]))
    second = Layer.from_dense("b.weight", np.array([[1.0, 1.0, 1.0]]))
    archive.write(Checkpoint("r", 0, (first, second), activation="tanh"))
    back = archive.checkpoint("r", 0)
    assert back.layers[0].bias.tolist() == [0.5, 0.0, -0.25] and back.layers[1].bias is None
    assert back.activation == "tanh" and back.meta == {}
    archive.set_activation("r", "gelu")
    assert archive.checkpoint("r", 0).activation == "gelu"
    assert archive.cypher("MATCH (n:Neuron {`group`: 1}) RETURN n.bias AS b ORDER BY n.`index`").b.tolist() == [0.5, 0.0, -0.25]
    with pytest.raises(NotFound, match="no run named 'x'"):
        archive.set_activation("x", "relu")


def test_names_are_checked_where_they_are_formatted_into_statements():
    from netarchive.store.ladybug import _statement, _Type

    assert _statement("ALTER TABLE {t} ADD {n} {k}", t="Neuron", n="degree", k=_Type("INT64")) == (
        "ALTER TABLE `Neuron` ADD `degree` INT64")
    assert _statement("COPY SYNAPSE({c}) FROM $rows", c=["w", "in_msf"]) == "COPY SYNAPSE(`w`, `in_msf`) FROM $rows"
    assert _statement("CREATE (:Neuron {p})", p={"group": "group", "w": "w"}) == "CREATE (:Neuron {`group`: `group`, `w`: `w`})"
    for bad in ("x` = 1 DETACH DELETE n //", "a b", "1abc"):
        with pytest.raises(StoreError, match="cannot be put into a statement"):
            _statement("SET n.{n} = $v", n=bad)
        with pytest.raises(StoreError, match="cannot be put into a statement"):
            _statement("CREATE (:Neuron {p})", p={"w": bad})
    with pytest.raises(StoreError):
        _statement("ADD x {k}", k=_Type("INT64; DROP TABLE Neuron"))


def test_cypher_graph_values_have_one_form(archive):
    archive.write(random_checkpoint([2, 1], density=1.0, seed=3))
    frame = archive.cypher(
        "MATCH p = (a:Neuron {`group`: 0, `index`: 1})-[s:SYNAPSE]->(b:Neuron) MATCH (r:Run)-[h:HAS_CHECKPOINT]->(c) "
        "RETURN a, s, p, r, h, [a] AS listed, {first: a} AS mapped")
    node = {"_label": "Neuron", "run": "r", "level": 0, "group": 0, "index": 1, "channel": None}
    node.pop("channel")  # absent properties are left out, as are LadybugDB's _ID and id
    assert frame["a"][0] == node
    assert frame["s"][0].keys() == {"_type", "w", "layer"} and frame["s"][0]["_type"] == "SYNAPSE"
    assert frame["p"][0]["_path"][0] == node and frame["p"][0]["_path"][1] == frame["s"][0]
    assert frame["p"][0]["_path"][2]["group"] == 1 and len(frame["p"][0]["_path"]) == 3
    assert frame["r"][0] == {"_label": "Run", "name": "r", "activation": "relu"}
    assert frame["h"][0] == {"_type": "HAS_CHECKPOINT"}
    assert frame["listed"][0] == [node] and frame["mapped"][0] == {"first": node}
CURVES = {"test_loss": ([500, 938, 1876], [2.3, 0.61, 0.075]), "test_accuracy": ([500, 1876], [0.1135, 0.9812])}


def test_curves_round_trip_and_stay_out_of_the_listing(archive):
    from dataclasses import replace

    archive.write(random_checkpoint([4, 3, 2], run="a", level=0))  # before any curves: no curve columns yet
    assert archive.curves().empty and list(archive.curves().columns) == ["run", "level", "metric", "iteration", "value"]
    archive.write(replace(random_checkpoint([4, 3, 2], run="a", level=1, metrics={"accuracy": 0.98}), curves=CURVES))
    back = archive.checkpoint("a", 1)
    assert {name: (i.tolist(), v.tolist()) for name, (i, v) in back.curves.items()} == CURVES
    assert archive.checkpoint("a", 0).curves == {}
    assert list(archive.checkpoints().columns) == ["run", "level", "layers", "neurons", "edges", "sparsity", "architecture_source", "accuracy"]
    table = archive.curves(["a"])
    assert list(table.itertuples(index=False, name=None)) == [
        ("a", 1, "test_loss", 500, 2.3), ("a", 1, "test_loss", 938, 0.61), ("a", 1, "test_loss", 1876, 0.075),
        ("a", 1, "test_accuracy", 500, 0.1135), ("a", 1, "test_accuracy", 1876, 0.9812)]
    assert table.dtypes.astype(str).tolist()[1::2] == ["int64", "int64"] and str(table.value.dtype) == "float64"
    archive.write(replace(random_checkpoint([4, 3, 2], run="a", level=1), curves={"test_loss": ([1], [0.5])}), replace=True)
    assert archive.curves()[["metric", "iteration", "value"]].values.tolist() == [["test_loss", 1, 0.5]]
    archive.rm("a", 1)
    assert archive.curves().empty
    with pytest.raises(NotFound, match="no run named 'b'"):
        archive.curves(["b"])


def test_runs_list_their_labels(archive):
    from dataclasses import replace

    archive.write(replace(random_checkpoint([4, 3, 2], run="a"), meta={"dataset_name": "mnist"}))
    archive.write(Checkpoint("b", 0, random_checkpoint([4, 3, 2]).layers, meta={"seed": "3"}, activation="tanh"))
    runs = archive.runs()
    assert runs.fillna("").values.tolist() == [["a", "relu", "mnist", ""], ["b", "tanh", "", "3"]]
    assert list(runs.columns) == ["run", "activation", "dataset_name", "seed"]


def test_new_labels_after_a_run_was_written_again(archive):
    """LadybugDB 0.22 corrupted a string dictionary (the commit's checkpoint failed) when a column was added
    inside a transaction after a Run's strings had been updated; columns are now added before it."""
    from dataclasses import replace

    for level in range(3):
        archive.write(replace(random_checkpoint([4, 3, 2], run="r1", level=level), meta={"key0": "val0"}))
    archive.set_activation("r1", "tanh")
    archive.write(replace(random_checkpoint([4, 3, 2], run="r2", metrics={"loss": 0.1}), meta={"key0": "v", "new": "x" * 30},
                          curves=CURVES))
    assert archive.runs().fillna("").values.tolist() == [["r1", "tanh", "val0", ""], ["r2", "relu", "v", "x" * 30]]


def test_a_refused_write_adds_no_column(archive):
    from dataclasses import replace

    archive.write(random_checkpoint([4, 3, 2], run="r"))
    with pytest.raises(AlreadyArchived):
        archive.write(replace(random_checkpoint([4, 3, 2], run="r", metrics={"loss": 1.0}), meta={"seed": "1"}, curves=CURVES))
    assert list(archive.runs().columns) == ["run", "activation"]
    assert list(archive.checkpoints().columns) == ["run", "level", "layers", "neurons", "edges", "sparsity", "architecture_source"]
    assert archive.curves().empty


def test_write_many_is_one_two_phase_write_per_batch(archive, monkeypatch):
    store = archive.store
    levels = [random_checkpoint([4, 3, 2], run="b", level=level, seed=level, metrics={"acc": level / 10}) for level in range(4)]
    monkeypatch.setattr(ladybug_store, "BATCH_SYNAPSES", levels[0].edges + levels[1].edges)
    monkeypatch.setattr(ladybug_store, "LOGGED_SYNAPSES", 0)  # tiny levels would be created, not copied
    copied, copy_in = [], store._copy_in
    monkeypatch.setattr(store, "_copy_in", lambda batch, kept, step: copied.append([c.level for c in batch]) or copy_in(batch, kept, step))
    store.write_many(levels[:3])
    assert copied == [[0, 1], [2]]
    assert archive.checkpoints("b")["acc"].tolist() == [0.0, 0.1, 0.2]
    for level in range(3):
        assert edge_set(archive.checkpoint("b", level)) == edge_set(levels[level])
    with pytest.raises(AlreadyArchived, match="run 'b' level 2 is already archived"):
        store.write_many([levels[3], levels[2]])  # one batch: the new level is not written either
    assert archive.levels("b") == [0, 1, 2] and archive.unfinished().empty
    store.write_many([levels[3], random_checkpoint([4, 3, 2], run="b", level=0, seed=9)], replace=True)
    assert archive.levels("b") == [0, 1, 2, 3] and edge_set(archive.checkpoint("b", 0)) == edge_set(random_checkpoint([4, 3, 2], run="b", level=0, seed=9))
    with pytest.raises(InputError, match="one \\(run, level\\) twice"):
        store.write_many([levels[3], levels[3]], replace=True)


def test_a_small_write_is_one_logged_commit_without_a_checkpoint(archive, monkeypatch):
    """A checkpoint of at most LOGGED_SYNAPSES synapses: one transaction of CREATEs, no COPY and no
    CHECKPOINT (whose cost grows with the archive); its commit is durable as it returns, so the lock
    records no commit under way, and a reader opened beside it replays the log."""
    store = archive.store
    statements, run = [], store._run
    monkeypatch.setattr(store, "_run", lambda query, params=None: statements.append(query) or run(query, params))
    checkpoint = random_checkpoint([30, 20, 10], seed=4, run="s", level=0)
    archive.write(checkpoint)
    words = [query.split()[0] for query in statements]
    assert "COPY" not in words and "CHECKPOINT" not in words and words.count("COMMIT") == 1, words
    assert store._lock.state()["committing"] is False and (store.path / "graph.lbdb.wal").stat().st_size > 0
    with netarchive.open(store.path, read_only=True) as reader:
        assert edge_set(reader.checkpoint("s", 0)) == edge_set(checkpoint)


def test_curves_survive_export_then_ingest(archive, tmp_path):
    from dataclasses import replace

    archive.write(replace(random_checkpoint([4, 3, 2], run="a", level=1), curves=CURVES))
    archive.export(tmp_path / "export")
    with netarchive.open(tmp_path / "again") as again:
        again.ingest([tmp_path / "export"], run="a")
        back = again.checkpoint("a", 1)
    assert {name: (i.tolist(), v.tolist()) for name, (i, v) in back.curves.items()} == CURVES
