"""Readers beside the writer of an embedded archive: a readers-writer lock on two files of the directory.

LadybugDB lets read-only processes open a database beside its one writer, but (measured with 0.22, see
docs/ladybug_durability.md) a reader must not keep using a database that the writer has checkpointed
since the reader opened it (its queries then spin or read pages that moved), and opening fails while a
checkpoint runs. So netarchive coordinates them itself:

- the writer holds the lock exclusively from the first commit of an operation to its end, through the
  checkpoints that make the commits durable, and records a new *generation* when it lets go;
- a reader holds it shared for each operation (a listing, a read, a Cypher statement) and reopens its
  database first when the generation changed, so it only ever sees the archive between two operations;
- a writer that wants the lock first takes a second file, the turnstile, which every reader passes
  through: a stream of overlapping readers cannot starve the writer.

``ARCHIVE/netarchive.lock`` holds the state as JSON: ``generation``, the writer's ``pid``, and
``committing`` (true from the writer's first commit until its last checkpoint, so that after a crash the
next opener knows that a torn tail of the write-ahead log is netarchive's own unfinished commit).
``ARCHIVE/netarchive.writer.lock`` is the turnstile. Both are advisory ``flock`` locks, released by the
kernel when a process dies.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "netarchive.lock"
TURNSTILE_FILE = "netarchive.writer.lock"
DEFAULT_WAIT = 30.0
"""Seconds a reading command waits for a writer's commit (a dense 6.27 M-synapse ingest holds readers
for about 5-20 s on two shared cores, bench/README.md) before it gives up with a one-line message."""


def read_wait(wait: float | None = None) -> float:
    """``wait``, else ``$NETARCHIVE_READ_RETRY_SECONDS``, else :data:`DEFAULT_WAIT`."""
    if wait is not None:
        return float(wait)
    text = os.environ.get("NETARCHIVE_READ_RETRY_SECONDS")
    try:
        return float(text) if text else DEFAULT_WAIT
    except ValueError:
        return DEFAULT_WAIT


class ArchiveLock:
    """The lock of one archive directory, held by one store (see the module docstring)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._main = _open(self.directory / LOCK_FILE)
        self._turnstile = _open(self.directory / TURNSTILE_FILE)
        self._exclusive = False

    def state(self) -> dict:
        """The recorded state (empty before the first write, or when the file is unreadable)."""
        if self._main is None:
            return {}
        try:
            return json.loads(os.pread(self._main, 4096, 0) or b"{}")
        except (OSError, ValueError):
            return {}

    @contextmanager
    def shared(self, wait: float, busy):
        """Hold the lock shared for one reading operation; after ``wait`` seconds raise ``busy(state)``."""
        if self._main is None or self._exclusive:
            yield self.state()
            return
        deadline, pause = time.monotonic() + wait, 0.01
        while True:
            if _try(self._turnstile, fcntl.LOCK_SH):
                got = _try(self._main, fcntl.LOCK_SH)
                fcntl.flock(self._turnstile, fcntl.LOCK_UN)
                if got:
                    break
            if time.monotonic() >= deadline:
                raise busy(self.state())
            time.sleep(pause)
            pause = min(pause * 2, 0.25)
        try:
            yield self.state()
        finally:
            fcntl.flock(self._main, fcntl.LOCK_UN)

    def acquire(self, wait: float | None = None, busy=None) -> dict:
        """Take the lock exclusively and record that a commit is under way; returns the state found.
        Waits for readers to finish their current operation (for ever, or ``wait`` seconds and then
        ``raise busy(state)``)."""
        if self._main is None or self._exclusive:
            return self.state()
        deadline, pause = (None if wait is None else time.monotonic() + wait), 0.01
        for lock in (self._turnstile, self._main):
            while not _try(lock, fcntl.LOCK_EX):
                if deadline is not None and time.monotonic() >= deadline:
                    if lock is self._main:
                        fcntl.flock(self._turnstile, fcntl.LOCK_UN)
                    raise busy(self.state())
                time.sleep(pause)
                pause = min(pause * 2, 0.25)
        self._exclusive = True
        found = self.state()
        self._write({**found, "pid": os.getpid(), "committing": True})
        return found

    def release(self, committing: bool = False) -> None:
        """Let readers in again, recording a new generation (their cue to reopen the database) and
        whether a commit is still not checkpointed (a failed checkpoint: the next opener recovers it)."""
        if not self._exclusive:
            return
        self._write({"generation": uuid.uuid4().hex, "pid": os.getpid(), "committing": committing})
        self._exclusive = False
        fcntl.flock(self._main, fcntl.LOCK_UN)
        fcntl.flock(self._turnstile, fcntl.LOCK_UN)

    @property
    def held(self) -> bool:
        return self._exclusive

    def close(self) -> None:
        self.release()
        for fd in (self._main, self._turnstile):
            if fd is not None:
                os.close(fd)
        self._main = self._turnstile = None

    def _write(self, state: dict) -> None:
        data = json.dumps(state).encode()
        try:
            os.pwrite(self._main, data, 0)
            os.ftruncate(self._main, len(data))
        except OSError:
            pass  # a lock file this process cannot write: it cannot write the archive either


def _open(path: Path) -> int | None:
    """A descriptor to lock ``path`` through (created if possible; None where the directory is not
    writable and the file does not exist: then nobody can write the archive and no lock is needed)."""
    for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
        try:
            return os.open(path, flags | os.O_CLOEXEC, 0o666)
        except OSError:
            continue
    return None


def _try(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
