"""A write killed (SIGKILL) or interrupted (SIGINT) at every point of its life, by the fault hook
(netarchive/store/faults.py) and by timed kills: the archive opens, ``check`` finds at most the leftovers
of the interrupted write (none after ``--repair``), and it holds exactly the checkpoints complete
before, plus at most the new one, synapse for synapse."""
import signal
import time

import pytest

from tests.archive_faults import assert_intact, copy_archive, make_sources, netarchive_command, problems_of, source

KILLED = -signal.SIGKILL


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return make_sources(tmp_path_factory.mktemp("sources"))


@pytest.fixture(scope="module")
def checkpoints(sources):
    return {
        "small": source(sources["small"], "r", 0),
        "medium": source(sources["medium"], "r", 1),
        "other": source(sources["other"], "r", 1),
        "mid": source(sources["mid"], "r", 2),
    }


@pytest.fixture(scope="module")
def template(tmp_path_factory, sources):
    """An archive holding r/0 (small), r/1 (medium) and r/2 (mid)."""
    path = tmp_path_factory.mktemp("template") / "archive"
    for level, name in ((0, "small"), (1, "medium"), (2, "mid")):
        status, output = netarchive_command(path, "ingest", sources[name], "--run", "r", "--level", level)
        assert status == 0, output
    return path


def base(checkpoints) -> dict:
    return {("r", 0): [checkpoints["small"]], ("r", 1): [checkpoints["medium"]], ("r", 2): [checkpoints["mid"]]}


INGEST = [
    "transaction", "neurons", "synapses", "synapses+0.05", "commit", "commit+0.05", "commit+0.2",
    "checkpoint", "checkpoint+0.02", "publish", "commit#2", "commit#2+0.005", "checkpoint#2",
]


@pytest.mark.parametrize("point", INGEST)
def test_ingest_killed(point, template, sources, checkpoints, tmp_path):
    store = copy_archive(template, tmp_path / "archive")
    status, output = netarchive_command(store, "ingest", sources["other"], "--run", "r", "--level", 3, crash_at=point)
    assert status in (KILLED, 0), output
    held = assert_intact(store, {**base(checkpoints), ("r", 3): [None, source(sources["other"], "r", 3)]})
    if point in ("transaction", "neurons", "synapses", "commit"):
        assert ("r", 3) not in held  # killed before anything was committed
    if status == 0 or point == "checkpoint#2":
        assert ("r", 3) in held  # killed after the publishing commit: the checkpoint is archived


SMALL_INGEST = ["transaction", "neurons", "synapses", "commit", "commit+0.005", "commit+0.02", "published"]


@pytest.mark.parametrize("point", SMALL_INGEST)
def test_small_ingest_killed(point, template, sources, checkpoints, tmp_path):
    """A small checkpoint goes in as one logged transaction (LOGGED_SYNAPSES): killed before or during
    its commit the archive is as it was; killed right after it, before any checkpoint, the new checkpoint
    is there whole, replayed from the log."""
    store = copy_archive(template, tmp_path / "archive")
    status, output = netarchive_command(store, "ingest", sources["small"], "--run", "r", "--level", 3, crash_at=point)
    assert status in (KILLED, 0), output
    held = assert_intact(store, {**base(checkpoints), ("r", 3): [None, source(sources["small"], "r", 3)]})
    if point in ("transaction", "neurons", "synapses", "commit"):
        assert ("r", 3) not in held
    if status == 0 or point == "published":
        assert ("r", 3) in held


REPLACE = [
    # the default for a small archive: the synapses that stay and the new ones go into a rebuilt table,
    # swapped in by the publishing commit
    *[("rebuild", 1, point) for point in ("synapses", "synapses+0.05", "commit+0.05", "commit+0.2", "checkpoint",
                                         "swap", "commit#2+0.005", "checkpoint#2")],
    # rows deleted one by one (a large archive): published first, the old rows removed after
    *[("rows", 0, point) for point in ("publish", "commit#2", "remove", "commit#3", "checkpoint#3")],
    ("rows", 2, "commit#3+0.02"),  # killed while the deletion of 29 k synapse rows commits
]


@pytest.mark.parametrize("how, level, point", REPLACE)
def test_replace_killed(how, level, point, template, sources, checkpoints, tmp_path):
    """--replace: either the old checkpoint is there, whole, or the new one: never neither, never a mixture."""
    store = copy_archive(template, tmp_path / "archive")
    status, output = netarchive_command(
        store, "ingest", sources["other"], "--run", "r", "--level", level, "--replace", crash_at=point,
        rebuild_factor=0 if how == "rows" else None,
    )
    assert status in (KILLED, 0), output
    allowed = base(checkpoints)
    allowed[("r", level)] = [*allowed[("r", level)], source(sources["other"], "r", level)]
    held = assert_intact(store, allowed)
    assert ("r", level) in held


RM = [
    *[("rebuild", 1, point) for point in ("synapses", "commit+0.02", "checkpoint", "swap", "commit#2+0.005")],
    *[("rows", 0, point) for point in ("remove", "commit", "checkpoint")],
    ("rows", 2, "commit+0.02"),
]


@pytest.mark.parametrize("how, level, point", RM)
def test_rm_killed(how, level, point, template, checkpoints, tmp_path):
    store = copy_archive(template, tmp_path / "archive")
    status, output = netarchive_command(store, "rm", "--run", "r", "--level", level, "--yes", crash_at=point,
                                        rebuild_factor=0 if how == "rows" else None)
    assert status in (KILLED, 0), output
    allowed = base(checkpoints)
    allowed[("r", level)].append(None)
    assert_intact(store, allowed)


def test_timed_kills_over_a_whole_replace(template, sources, checkpoints, tmp_path):
    """Plain SIGKILLs at evenly spread moments of an ingest --replace (loading, copying, commits, checkpoints)."""
    start = time.monotonic()
    status, output = netarchive_command(copy_archive(template, tmp_path / "timing"), "ingest", sources["other"],
                                        "--run", "r", "--level", 1, "--replace")
    duration = time.monotonic() - start
    assert status == 0, output
    outcomes = []
    for i in range(1, 9):
        store = copy_archive(template, tmp_path / f"archive{i}")
        status, output = netarchive_command(store, "ingest", sources["other"], "--run", "r", "--level", 1, "--replace",
                                            kill_after=duration * i / 8.5)
        assert status in (KILLED, 0), output
        allowed = {**base(checkpoints), ("r", 1): [checkpoints["medium"], checkpoints["other"]]}
        outcomes.append(assert_intact(store, allowed)[("r", 1)] is checkpoints["other"])
    assert not outcomes[0], outcomes  # the first kill landed before the swap (later ones on either side of it)


INTERRUPT = [
    # before the commit that publishes the write: rolled back or cleaned up, the archive as it was
    ("ingest", "synapses+0.05", False), ("ingest", "commit+0.05", False), ("ingest", "checkpoint", False),
    ("ingest", "publish", False), ("replace", "synapses+0.05", False), ("replace", "checkpoint", False),
    ("rm", "synapses", False),
    # during the publishing commit (or the swap of a rebuilt table): held back until the write is done
    ("replace", "swap", True), ("rm", "swap", True),
]


@pytest.mark.parametrize("command, point, done", INTERRUPT)
def test_ctrl_c(command, point, done, template, sources, checkpoints, tmp_path):
    """Ctrl-C: exit status 130, nothing left over, and the archive as it was (or, past the point of no
    return, with the write done)."""
    store = copy_archive(template, tmp_path / "archive")
    args = {
        "ingest": ("ingest", sources["other"], "--run", "r", "--level", 3),
        "replace": ("ingest", sources["other"], "--run", "r", "--level", 1, "--replace"),
        "rm": ("rm", "--run", "r", "--level", 1, "--yes"),
    }[command]
    status, output = netarchive_command(store, *args, crash_at=f"{point}:INT")
    assert status == 130, output
    assert output.strip().splitlines()[-1].startswith("interrupted: the archive is as it was"), output
    assert problems_of(store) == []  # the interrupted write cleaned up after itself
    after = {"ingest": [], "replace": [checkpoints["other"]], "rm": [None]}[command] if done else []
    held = assert_intact(store, {**base(checkpoints), ("r", 1): after or [checkpoints["medium"]]})
    assert (held.get(("r", 1)) is checkpoints["other"]) == (done and command == "replace")


def test_a_reader_that_cannot_recover_says_who_will(template, sources, tmp_path):
    """Killed during its checkpoint, an ingest leaves LadybugDB's recovery pending. A reading command
    finishes it itself when it can write the directory (assert_intact's ``ls``); on a read-only mount of
    the archive it cannot, and says that the next write or ``check --repair`` will."""
    import subprocess

    for delay in (0.05, 0.1, 0.15, 0.2, 0.3, 0.4):
        store = copy_archive(template, tmp_path / f"archive{delay}")
        netarchive_command(store, "ingest", sources["other"], "--run", "r", "--level", 3, crash_at=f"commit+{delay}")
        if (store / "graph.lbdb.shadow").exists():
            break
    else:
        pytest.skip("no kill landed inside LadybugDB's checkpoint on this machine")
    view = tmp_path / "read-only"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(store), str(view)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount the archive read-only: {mounted.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True, capture_output=True)
        status, output = netarchive_command(view, "ls")
        assert status == 1 and len(output.strip().splitlines()) == 1, output
        assert "needs recovery from an interrupted write" in output and "the next write or `netarchive check --repair` will" in output
    finally:
        subprocess.run(["umount", "-l", str(view)], capture_output=True)
