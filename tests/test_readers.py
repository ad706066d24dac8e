"""Readers beside a writer: several processes list, query and analyse the archive in a loop while another
ingests, replaces and removes checkpoints. No reader fails within its wait, and none ever sees a
checkpoint that is not complete (archive_lock.py holds readers off from a write's first commit to its end)."""
import json
import time

from tests.archive_faults import make_sources, netarchive_command, source, start_reader, wait_for_a_round


def test_readers_beside_a_writer(tmp_path):
    sources = make_sources(tmp_path / "sources")
    store = tmp_path / "archive"
    status, output = netarchive_command(store, "ingest", sources["small"], "--run", "r", "--level", 0)
    assert status == 0, output
    shape = {name: source(path, "r", 0) for name, path in sources.items()}
    allowed = {
        ("r", 0): {(shape["small"].edges, shape["small"].neurons)},
        ("r", 1): {(shape[name].edges, shape[name].neurons) for name in ("medium", "other")},
        ("r", 2): {(shape[name].edges, shape[name].neurons) for name in ("mid", "small")},
        ("r", 3): {(shape["small"].edges, shape["small"].neurons)},
    }
    stop = tmp_path / "stop"
    readers = [start_reader(store, stop, tmp_path / f"reader{i}.json", allowed) for i in range(3)]
    writes = [
        ("ingest", sources["medium"], "--run", "r", "--level", 1),
        ("ingest", sources["other"], "--run", "r", "--level", 1, "--replace"),  # rebuilt synapse table
        ("ingest", sources["mid"], "--run", "r", "--level", 2),
        ("ingest", sources["small"], "--run", "r", "--level", 3),  # created in one logged commit, not copied
        ("rm", "--run", "r", "--level", 1, "--yes"),
        ("ingest", sources["medium"], "--run", "r", "--level", 1),
        ("ingest", sources["small"], "--run", "r", "--level", 2, "--replace"),
        ("rm", "--run", "r", "--level", 2, "--yes"),
    ]
    logs = [tmp_path / f"reader{i}.json" for i in range(3)]
    finished = wait_for_a_round(logs)  # every reader has gone round once before the writer starts
    try:
        for i, args in enumerate(writes):
            status, output = netarchive_command(store, *args, rebuild_factor=0 if i == 6 else None)  # rows deleted
            assert status == 0, output
            finished = wait_for_a_round(logs, finished)  # every reader ends a round after each step
    finally:
        stop.touch()
        for reader in readers:
            reader.join(120)
    for log in logs:
        log = json.loads(log.read_text())
        assert log["problems"] == [], log["problems"][:5]
        assert log["rounds"] > len(writes), log  # readers went round between the writer's steps


HOLDER = """
import sys, netarchive
archive = netarchive.open(sys.argv[1])
archive.store._lock.acquire()  # as the writer does from its first commit to the end of its operation
print("holding", flush=True)
sys.stdin.read()
archive.close()
"""


def test_a_reader_waits_for_the_writer_then_says_who_holds_it(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    from click.testing import CliRunner

    import netarchive
    from netarchive.cli import cli
    from tests.conftest import random_checkpoint
    from tests.test_cli import one_line_error

    store = tmp_path / "archive"
    with netarchive.open(store) as archive:
        archive.write(random_checkpoint([4, 3]))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(store)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline().strip() == "holding"
        monkeypatch.setenv("NETARCHIVE_READ_RETRY_SECONDS", "1.5")
        start = time.monotonic()
        result = CliRunner().invoke(cli, ["--store", str(store), "ls"])
        waited = time.monotonic() - start
        one_line_error(result, f"is being written by process {holder.pid}, which has held readers off for longer than 1.5 s")
        assert "NETARCHIVE_READ_RETRY_SECONDS" in result.output and 1.5 <= waited < 15
    finally:
        holder.communicate("", timeout=60)
    assert CliRunner().invoke(cli, ["--store", str(store), "ls"]).exit_code == 0
