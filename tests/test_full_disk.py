"""A full disk: an ingest the filesystem has no room for is refused before anything is written, naming the
space it needs and the space there is; one that fills the disk anyway (the estimate defeated on purpose)
leaves the archive as a crash would: hidden leftovers, removed by ``check --repair`` once there is room.

The filesystem is a small tmpfs the test mounts (root only; skipped with the reason elsewhere)."""
import shutil
import signal
import subprocess

import numpy as np
import pytest
import torch

import netarchive.store.ladybug as ladybug_store
from tests.archive_faults import assert_intact, make_sources, netarchive_command, problems_of, source
from tests.test_cli import one_line_error

SIZE_MB = 16


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(mount)],
                              capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("no mount command: cannot make a small filesystem")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {SIZE_MB} MB tmpfs (root and CAP_SYS_ADMIN needed): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


@pytest.fixture
def big(tmp_path):
    """A dense 1024-1024-512 checkpoint: 1.57 M synapses, about 30 MB to write, 46 MB by the estimate."""
    rng = np.random.default_rng(0)
    path = tmp_path / "big.pt"
    torch.save({"fc0.weight": torch.from_numpy(rng.normal(size=(1024, 1024)).astype(np.float32)),
                "fc1.weight": torch.from_numpy(rng.normal(size=(512, 1024)).astype(np.float32))}, path)
    return path


def test_an_ingest_too_big_for_the_disk_is_refused_up_front(small_disk, big, tmp_path):
    sources = make_sources(tmp_path / "sources")
    store = small_disk / "archive"
    assert netarchive_command(store, "ingest", sources["small"], "--run", "r", "--level", 0)[0] == 0
    free = shutil.disk_usage(small_disk).free / 2**20
    from click.testing import CliRunner

    from netarchive.cli import cli

    result = CliRunner().invoke(cli, ["--store", str(store), "ingest", str(big), "--run", "r", "--level", 1])
    one_line_error(result, "not enough disk space for run 'r' level 1: it needs about ")
    assert f"and {free:,.0f} MB are free" in result.output or f"and {free - 1:,.0f} MB" in result.output
    assert problems_of(store) == []
    assert_intact(store, {("r", 0): [source(sources["small"], "r", 0)]})


def test_a_disk_that_fills_anyway_is_handled_like_a_crash(small_disk, big, tmp_path):
    sources = make_sources(tmp_path / "sources")
    store = small_disk / "archive"
    assert netarchive_command(store, "ingest", sources["small"], "--run", "r", "--level", 0)[0] == 0
    status, output = netarchive_command(store, "ingest", big, "--run", "r", "--level", 1,
                                        overrides={"BYTES_PER_SYNAPSE": 0, "BYTES_PER_NEURON": 0, "FIXED_BYTES": 0})
    assert status == 1, output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "full" in lines[0], output
    subprocess.run(["mount", "-o", f"remount,size={SIZE_MB * 4}m", str(small_disk)], check=True, timeout=30)
    assert_intact(store, {("r", 0): [source(sources["small"], "r", 0)], ("r", 1): [None]})
    assert ladybug_store.BYTES_PER_SYNAPSE > 0  # the overrides stayed in the ingest's process


def test_a_small_write_that_fills_the_disk_anyway_leaves_the_archive_as_it_was(small_disk, tmp_path):
    """A checkpoint small enough to be created in one logged commit (LOGGED_SYNAPSES), the space check
    defeated: the disk fills while the log is written. LadybugDB 0.22 then ends the process when the
    database closes (it cannot write its log: SIGABRT, as a crash; the space check is what keeps users
    from meeting this), or the command says so in one line; either way, once there is room, the archive
    holds what it held."""
    sources = make_sources(tmp_path / "sources")
    store = small_disk / "archive"
    assert netarchive_command(store, "ingest", sources["small"], "--run", "r", "--level", 0)[0] == 0
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - (16 << 10)))
    status, output = netarchive_command(store, "ingest", sources["small"], "--run", "r", "--level", 1,
                                        overrides={"BYTES_PER_SYNAPSE": 0, "BYTES_PER_NEURON": 0, "FIXED_BYTES": 0,
                                                   "LOG_BYTES_PER_SYNAPSE": 0, "LOG_BYTES_PER_NEURON": 0})
    assert status in (1, -signal.SIGABRT), output
    assert status == -signal.SIGABRT or ("disk holding the archive" in output and "is full" in output), output
    filler.unlink()
    assert_intact(store, {("r", 0): [source(sources["small"], "r", 0)], ("r", 1): [None]})


def test_a_small_write_counts_its_log_in_the_space_it_needs(small_disk, tmp_path):
    """Up front, the space check refuses a small write whose log would not fit (LOG_BYTES_PER_SYNAPSE)."""
    sources = make_sources(tmp_path / "sources")
    store = small_disk / "archive"
    assert netarchive_command(store, "ingest", sources["small"], "--run", "r", "--level", 0)[0] == 0
    checkpoint = source(sources["small"], "r", 1)
    log = ladybug_store.LOG_BYTES_PER_SYNAPSE * checkpoint.edges + ladybug_store.LOG_BYTES_PER_NEURON * checkpoint.neurons
    (small_disk / "filler").write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - log // 2))
    status, output = netarchive_command(store, "ingest", sources["small"], "--run", "r", "--level", 1,
                                        overrides={"BYTES_PER_SYNAPSE": 0, "BYTES_PER_NEURON": 0, "FIXED_BYTES": 0})
    assert status == 1 and "not enough disk space for run 'r' level 1" in output, output
    (small_disk / "filler").unlink()
    assert problems_of(store) == []
    assert_intact(store, {("r", 0): [source(sources["small"], "r", 0)]})
