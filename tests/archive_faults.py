"""Helpers of the fault-injection tests: source files, a base archive, commands run in their own
process (so that they can be killed), and the check that an archive is intact after a crash."""
from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import netarchive
from netarchive.loaders import load

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = {"small": (30, 20, 10), "medium": (784, 256, 10), "other": (784, 256, 10), "mid": (400, 100, 10)}
"""The medium checkpoint (203 k synapses) makes each COPY and commit last long enough (0.1-0.5 s) for
timed kills to land inside them, while a whole ingest takes about a second; deleting the 29 k synapses
of the mid one row by row takes about as long."""

_PROCESSES = multiprocessing.get_context("forkserver")
_PROCESSES.set_forkserver_preload(["netarchive.cli", "netarchive.store.ladybug", "tests.archive_faults"])
"""Commands run in processes forked from a server that has imported netarchive once: a killed command
is a real process killed, at the cost of a fork rather than of a Python start-up (about 2 s)."""


def make_sources(directory: Path) -> dict[str, Path]:
    """One .pt state_dict per entry of WIDTHS, with random weights of which 30 % are pruned (zero)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for seed, (name, widths) in enumerate(WIDTHS.items()):
        generator = torch.Generator().manual_seed(seed)
        state = {}
        for l, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
            weight = torch.randn(n_out, n_in, generator=generator)
            weight[torch.rand(n_out, n_in, generator=generator) < 0.3] = 0
            state[f"fc{l}.weight"] = weight
        paths[name] = directory / f"{name}.pt"
        torch.save(state, paths[name])
    return paths


def netarchive_command(store: Path, *args, crash_at: str | None = None, rebuild_factor: float | None = None,
                       overrides: dict | None = None, kill_after: float | None = None,
                       timeout: float = 300) -> tuple[int, str]:
    """Run ``netarchive --store STORE ARGS`` in its own process; its exit status (-9 when killed) and output.

    ``crash_at``: NETARCHIVE_CRASH_AT for it; ``rebuild_factor``: REBUILD_FACTOR (0: ``rm`` and
    ``--replace`` always delete rows); ``overrides``: other constants of netarchive.store.ladybug to set
    in it; ``kill_after``: SIGKILL it after so many seconds."""
    output = Path(tempfile.mkstemp(suffix=".out")[1])
    constants = dict(overrides or {})
    if rebuild_factor is not None:
        constants["REBUILD_FACTOR"] = rebuild_factor
    process = _PROCESSES.Process(target=_command, args=(str(store), [str(a) for a in args], crash_at, constants, str(output)))
    process.start()
    if kill_after is not None:
        process.join(kill_after)
        if process.exitcode is None:
            os.kill(process.pid, signal.SIGKILL)
    process.join(timeout)
    if process.exitcode is None:
        process.kill()
        process.join()
    text = output.read_text()
    output.unlink()
    return process.exitcode, text


def _command(store: str, args: list[str], crash_at: str | None, constants: dict, output: str) -> None:
    import netarchive.store.ladybug as ladybug_store
    from netarchive.cli import cli

    os.environ.pop("NETARCHIVE_CRASH_AT", None)
    if crash_at:
        os.environ["NETARCHIVE_CRASH_AT"] = crash_at
    for name, value in constants.items():
        setattr(ladybug_store, name, value)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with open(output, "w") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
    sys.stdin = open(os.devnull)
    cli.main(["--store", store, *args], prog_name="netarchive")


def synapses(checkpoint) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Each layer's (src, dst, w) sorted by (src, dst): equal lists mean equal checkpoints, synapse for synapse."""
    out = []
    for layer in checkpoint.layers:
        order = np.lexsort((layer.dst, layer.src))
        out.append((layer.src[order], layer.dst[order], layer.w[order]))
    return out


def same_synapses(a, b) -> bool:
    return a.widths == b.widths and all(
        all(np.array_equal(x, y) for x, y in zip(left, right)) for left, right in zip(synapses(a), synapses(b))
    )


def source(path: Path, run: str, level: int):
    [checkpoint] = load([path], run=run, level=level)
    return checkpoint


def copy_archive(template: Path, destination: Path) -> Path:
    shutil.copytree(template, destination)
    return destination


def problems_of(store: Path, repair: bool = False) -> list[str]:
    table = netarchive.check(store, repair=repair, wait=60)
    return [f"{row.problem} {row.run}/{row.level}: {row.detail}" for row in table.itertuples() if not (repair and row.repaired)]


def assert_intact(store: Path, allowed: dict[tuple[str, int], list]) -> dict[tuple[str, int], object]:
    """The archive opens; ``check`` finds nothing but leftovers of an interrupted write, and none after
    ``--repair``; and it holds, for each (run, level), one of the ``allowed`` checkpoints (None: none),
    synapse for synapse. Returns what it holds."""
    from click.testing import CliRunner

    from netarchive.cli import cli

    listing = CliRunner().invoke(cli, ["--store", str(store), "ls"])  # a reading command first: it recovers
    assert listing.exit_code == 0, listing.output
    found = problems_of(store)
    assert all(text.startswith(("unfinished-checkpoint", "leftover-table")) for text in found), found
    assert problems_of(store, repair=True) == []
    assert problems_of(store) == []
    held = {}
    with netarchive.open(store, read_only=True, wait=60) as archive:
        listing = archive.checkpoints()
        keys = {(run, int(level)) for run, level in zip(listing["run"], listing["level"])}
        assert keys <= set(allowed), (keys, set(allowed))
        for key, candidates in allowed.items():
            if key not in keys:
                assert None in candidates, f"{key} is gone"
                continue
            back = archive.checkpoint(*key)
            match = [c for c in candidates if c is not None and same_synapses(back, c)]
            assert match, f"{key} holds none of the allowed checkpoints"
            held[key] = match[0]
    return held


def start_reader(store: Path, stop: Path, log: Path, allowed: dict[tuple[str, int], set[tuple[int, int]]]):
    """A process that reads ``store`` in a loop until ``stop`` exists, as users do beside a writer:
    ``ls``, ``query cypher`` and ``query components`` (each a command that opens the archive), and one
    archive kept open throughout (a notebook). Every failure, and every checkpoint it sees that is not one
    of the ``allowed`` (edges, neurons) of its (run, level), goes into ``log``, one line each."""
    process = _PROCESSES.Process(target=_read_in_a_loop, args=(str(store), str(stop), str(log), allowed))
    process.start()
    return process


def wait_for_a_round(logs: list[Path], after: list[int] | None = None, timeout: float = 300) -> list[int]:
    """Wait until every reader logging to ``logs`` has finished a round more than the ``after`` it had
    (none: at least one), so that each of a writer's steps meets a round of every reader however fast the
    write is; the rounds each has finished."""
    after = after or [0] * len(logs)
    deadline = time.monotonic() + timeout
    while True:
        done = [int(text) if (text := _read_or_empty(log.with_name(log.name + ".round"))) else -1 for log in logs]
        if all(d > a for d, a in zip(done, after)) or time.monotonic() > deadline:
            return done
        time.sleep(0.05)


def _read_or_empty(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _read_in_a_loop(store: str, stop: str, log: str, allowed: dict) -> None:
    import json

    from click.testing import CliRunner

    from netarchive.cli import cli

    seen, problems, rounds = set(), [], 0

    def command(*args):
        result = CliRunner().invoke(cli, ["--store", store, *map(str, args)])
        if result.exit_code != 0 and "has no level" not in result.output:
            problems.append(f"{' '.join(map(str, args[:2]))}: exit {result.exit_code}: {result.output.strip()}")
            return None
        return result.output if result.exit_code == 0 else None

    def judge(where: str, run, level, edges, neurons=None):
        key = (run, int(level))
        if key not in allowed or not any(e == edges and (neurons is None or n == neurons) for e, n in allowed[key]):
            problems.append(f"{where} saw {run}/{level} with {edges} edges, {neurons} neurons")
        seen.add(key)

    notebook = netarchive.open(store, read_only=True)
    while not os.path.exists(stop):
        Path(log + ".round").write_text(str(rounds))  # rounds finished: the writer waits on them
        rounds += 1
        listing = command("ls", "--format", "json")
        for row in json.loads(listing or "[]"):
            judge("ls", row["run"], row["level"], row["edges"], row["neurons"])
        nodes = command("query", "cypher", "MATCH (c:Checkpoint) RETURN c.run AS run, c.level AS level, "
                        "c.edges AS edges, c.neurons AS neurons, c.incomplete AS incomplete", "--format", "json")
        for row in json.loads(nodes or "[]"):
            if row["incomplete"]:
                problems.append(f"cypher saw the incomplete checkpoint {row['run']}/{row['level']}")
            judge("cypher", row["run"], row["level"], row["edges"], row["neurons"])
        counts = command("query", "cypher", "MATCH (a:Neuron)-[s:SYNAPSE]->() RETURN a.run AS run, a.level AS level, "
                         "count(s) AS edges", "--format", "json")
        for row in json.loads(counts or "[]"):
            judge("cypher over synapses", row["run"], row["level"], row["edges"])
        for run, level in sorted(seen):
            command("query", "components", "--run", run, "--level", level, "--format", "json")
        try:
            for row in notebook.checkpoints().itertuples():
                judge("notebook listing", row.run, row.level, row.edges, row.neurons)
                back = notebook.checkpoint(row.run, row.level)  # a later operation: maybe another version
                judge("notebook read", row.run, row.level, back.edges, back.neurons)
        except netarchive.NetarchiveError as error:
            if "has no level" not in str(error):
                problems.append(f"notebook: {error}")
    notebook.close()
    Path(log).write_text(json.dumps({"rounds": rounds, "problems": problems}))
