"""Damaged archives: reads refuse what contradicts the Checkpoint node's counts, every command says in one
line what is wrong, and ``check`` names each problem, which ``check --repair`` mends where it can."""
import json
import os
import random

import ladybug
import pandas as pd
import pytest
from click.testing import CliRunner

import netarchive
from netarchive.cli import cli
from netarchive.errors import DamagedArchive
from tests.conftest import edge_set, random_checkpoint
from tests.test_cli import one_line_error

FIRST, SECOND = (random_checkpoint([12, 8, 4], density=0.6, seed=seed, run="r", level=seed) for seed in (0, 1))


@pytest.fixture
def store(tmp_path):
    """An archive holding r/0 and r/1."""
    with netarchive.open(tmp_path / "archive") as archive:
        archive.write(FIRST)
        archive.write(SECOND)
    return tmp_path / "archive"


def command(store, *args):
    return CliRunner().invoke(cli, ["--store", str(store), *map(str, args)])


def problems(store, repair=False):
    table = netarchive.check(store, repair=repair)
    return [(row.problem, row.run if isinstance(row.run, str) else None, None if pd.isna(row.level) else int(row.level),
             row.repaired) for row in table.itertuples()]


def raw(store, *statements):
    """Run statements on the archive's database directly, as damage from outside netarchive would."""
    db = ladybug.Database(str(store / "graph.lbdb"))
    conn = ladybug.Connection(db)
    for statement in statements:
        conn.execute(statement)
    conn.close()
    db.close()


def test_a_sound_archive(store):
    result = command(store, "check")
    assert result.exit_code == 0 and result.output == f"the archive at {store} is sound\n"
    result = command(store, "check", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.output) == []


def test_missing_synapses_are_refused_by_reads_and_removed_by_repair(store):
    raw(store, "MATCH (a:Neuron)-[s:SYNAPSE]->() WHERE a.level = 0 AND a.`group` = 1 DELETE s")
    with netarchive.open(store, read_only=True) as archive:
        with pytest.raises(DamagedArchive, match=r"run 'r' level 0 is damaged: the archive holds \d+ edges where it records"):
            archive.checkpoint("r", 0)
        assert edge_set(archive.checkpoint("r", 1)) == edge_set(SECOND)
    one_line_error(command(store, "query", "components", "--run", "r", "--level", 0), "`netarchive check`")
    result = command(store, "check", "--format", "json")
    assert result.exit_code == 1 and "1 problem(s)" in result.output
    [row] = json.loads(result.output[: result.output.rindex("]") + 1])
    assert (row["problem"], row["run"], row["level"]) == ("damaged-checkpoint", "r", 0)
    assert row["detail"].startswith(f"holds {FIRST.layers[0].edges:,} of its {FIRST.edges:,} SYNAPSE rows")
    assert row["repair"] == "remove it (ingest it again)"
    result = command(store, "check", "--repair")
    assert result.exit_code == 0 and "damaged-checkpoint" in result.output
    assert problems(store) == []
    with netarchive.open(store, read_only=True) as archive:
        assert archive.levels("r") == [1]


def test_rows_of_no_checkpoint_and_other_inconsistencies(store):
    raw(
        store,
        "CREATE (:Neuron {id: 99 * 4294967296, run: 'ghost', level: 0, `group`: 0, `index`: 0})",
        "CREATE (:Run {name: 'empty'})",
        # a synapse from r/0's first input to r/1's first input (both checkpoints otherwise intact)
        "MATCH (a:Neuron {id: 4294967296}), (b:Neuron {id: 2 * 4294967296}) CREATE (a)-[:SYNAPSE {w: 1.0}]->(b)",
        "MATCH (c:Counter) SET c.value = 1",
    )
    found = {problem: (run, level) for problem, run, level, _ in problems(store)}
    assert found == {"orphan-neurons": (None, None), "stray-synapses": (None, None), "empty-run": ("empty", None),
                     "counter": (None, None)}
    assert all(repaired for *_, repaired in problems(store, repair=True))
    assert problems(store) == []
    with netarchive.open(store) as archive:
        assert edge_set(archive.checkpoint("r", 0)) == edge_set(FIRST)
        archive.write(random_checkpoint([3, 2], run="s"))  # the counter gives a fresh id
        assert archive.checkpoints()["run"].tolist() == ["r", "r", "s"]


def test_truncated_database_file(store):
    size = os.path.getsize(store / "graph.lbdb")
    os.truncate(store / "graph.lbdb", size // 2)
    for args in (("ls",), ("query", "components", "--run", "r"), ("ingest", "x.pt", "--run", "r")):
        one_line_error(command(store, *args), "graph.lbdb is damaged")
    assert problems(store) == [("database-file", None, None, False)]
    assert command(store, "check", "--repair").exit_code == 1  # nothing here can mend it: restore a backup
    os.truncate(store / "graph.lbdb", 0)
    one_line_error(command(store, "ls"), "not a LadybugDB database")  # never silently a new, empty archive


@pytest.mark.parametrize("seed", [0, 85])  # 85: garbage whose header reads as a log written without checksums
def test_garbage_write_ahead_log(store, seed):
    (store / "graph.lbdb.wal").write_bytes(random.Random(seed).randbytes(4096))
    for args in (("ls",), ("query", "components", "--run", "r", "--level", 1), ("rm", "--run", "r", "--yes")):
        one_line_error(command(store, *args), "graph.lbdb.wal is damaged")
    assert problems(store) == [("write-ahead-log", None, None, False)]
    assert problems(store, repair=True) == [("write-ahead-log", None, None, True)]
    assert problems(store) == []
    with netarchive.open(store, read_only=True) as archive:
        assert edge_set(archive.checkpoint("r", 0)) == edge_set(FIRST)


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_versions_file(store, damage):
    versions = store / "netarchive.json"
    versions.unlink() if damage == "deleted" else versions.write_text("{not json")
    expected = "has graph.lbdb but no netarchive.json" if damage == "deleted" else "netarchive.json is damaged"
    for args in (("ls",), ("ingest", "x.pt", "--run", "r")):
        one_line_error(command(store, *args), expected)
    assert problems(store) == [("versions-file", None, None, False)]
    assert problems(store, repair=True) == [("versions-file", None, None, True)]
    assert problems(store) == []
    assert json.loads(versions.read_text())["format"] == 1


def test_cached_analyses(store):
    from netarchive.analysis.components import components

    with netarchive.open(store) as archive:
        archive.analyze(components, "r", 0)
        cached = next(archive.cache.directory.glob("*/*/*.parquet"))
        (archive.cache.directory / "0123456789abcdef").mkdir()  # a version no longer archived
    cached.write_bytes(b"garbage")
    assert sorted(problem for problem, *_ in problems(store)) == ["damaged-cache", "stale-cache"]
    assert all(repaired for *_, repaired in problems(store, repair=True))
    assert problems(store) == [] and not cached.exists()


def test_an_archive_written_before_the_two_phase_write_is_upgraded(store):
    """Archives without ``incomplete`` and ``layer_synapses``: the first open (a read-only one too, when it
    can take the lock) adds the columns; reads then verify the total synapse count."""
    raw(store, "ALTER TABLE Checkpoint DROP incomplete", "ALTER TABLE Checkpoint DROP layer_synapses")
    with netarchive.open(store, read_only=True) as archive:
        assert edge_set(archive.checkpoint("r", 1)) == edge_set(SECOND)
    assert problems(store) == []
    raw(store, "MATCH (a:Neuron)-[s:SYNAPSE]->() WHERE a.level = 1 AND a.`group` = 0 DELETE s")
    with netarchive.open(store, read_only=True) as archive:
        with pytest.raises(DamagedArchive, match="level 1 is damaged"):
            archive.checkpoint("r", 1)
