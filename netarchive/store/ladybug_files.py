"""The files of an embedded archive, and opening its LadybugDB database without losing any of them.

Layout of an archive directory::

    ARCHIVE/graph.lbdb        the LadybugDB database (schema in cypher/schema.md)
    ARCHIVE/graph.lbdb.wal    its write-ahead log, between a commit and the checkpoint that folds it in
    ARCHIVE/netarchive.json   the versions that wrote it, read *before* the database is opened
    ARCHIVE/netarchive.lock*  the readers-writer lock (archive_lock.py)
    ARCHIVE/cache/            cached analysis tables (netarchive/cache.py)

LadybugDB upgrades its on-disk format on open and cannot go back, so the versions are checked on the
JSON file first, and a database file that is missing, empty or not LadybugDB's is refused rather than
opened (LadybugDB would silently start a new, empty database). :func:`directory_problems` lists what
keeps an archive from opening, each with its repair when there is one; opening raises the first of them.

A kill during a commit leaves a torn tail in the write-ahead log, which LadybugDB 0.22 refuses to replay
by default (it then refuses the whole database). netarchive records in its lock file when a commit is
under way; an unreadable log after such a commit is its own unfinished transaction and is discarded on
open (``throw_on_wal_replay_failure=False``, replaying everything up to the tear). An unreadable log
when no commit was under way is damage: refused, and ``netarchive check --repair`` discards it.
"""
from __future__ import annotations

import json
import os
import re
from importlib.metadata import version
from pathlib import Path

from netarchive.errors import ArchiveBusy, DamagedArchive, NotFound, StoreError, first_line
from netarchive.store.base import Problem

FORMAT = 1
DATABASE_FILE = "graph.lbdb"
LOG_FILE = DATABASE_FILE + ".wal"
VERSIONS_FILE = "netarchive.json"
_MAGIC = b"LBUG"
"""A LadybugDB database file starts with these bytes and its storage version as a little-endian uint64."""
_OWN_FILES = ("netarchive.lock", "netarchive.writer.lock")
LOG_CHECKPOINT_BYTES = 8 << 20
"""LadybugDB checkpoints at a commit that leaves more log than this (its default: 16 MB). Small writes
leave their rows in the log (ladybug.LOGGED_SYNAPSES), which every reader replays when it opens (about
0.1 s a MB): 8 MB bounds that, and still spreads one checkpoint over several small writes."""

_RECOVERY_PENDING = ("checkpoint recovery is pending", "Couldn't replay shadow pages under read-only mode")
_LOG_UNREADABLE = ("Checksum verification failed", "WAL", "Assertion failed", "enableChecksums")
"""LadybugDB's words for a log it cannot replay; a damaged log's header can also read as written without
checksums (about 1 in 200 random logs), which the default open refuses with "enableChecksums"."""


class DamagedLog(DamagedArchive):
    """The write-ahead log cannot be replayed, and no netarchive commit was under way."""


class NeedsRecovery(Exception):
    """A read-only open found a database that only a read-write open can bring up to date (the leftovers
    of an interrupted checkpoint or commit, or an older schema)."""


def ladybug_minor() -> str:
    return ".".join(version("ladybug").split(".")[:2])


def directory_problems(path: Path, read_only: bool) -> list[Problem]:
    """What keeps the archive directory ``path`` from being opened, each with its repair where there is
    one. A directory that is no archive at all raises (NotFound, StoreError) instead."""
    location, versions_file, database = str(path), path / VERSIONS_FILE, path / DATABASE_FILE
    if path.exists() and not path.is_dir():
        raise StoreError(f"{location} is a file, not an archive directory")
    if not versions_file.exists():
        if database.exists():
            return [Problem(
                "versions-file", f"{location} has {DATABASE_FILE} but no {VERSIONS_FILE}, the record of the "
                "versions that wrote it", *_rewrite_versions(path),
            )]
        if read_only:
            raise NotFound(f"no archive at {location} (create one with `netarchive ingest`)")
        if path.exists() and any(entry.name not in _OWN_FILES for entry in path.iterdir()):
            raise StoreError(f"{location} is a non-empty directory that is not a netarchive archive")
        return []
    try:
        written = json.loads(versions_file.read_text())
        written_minor = ".".join(str(written["ladybug"]).split(".")[:2])
    except (ValueError, KeyError, TypeError, OSError):
        return [Problem(
            "versions-file", f"{versions_file} is damaged: it does not say which LadybugDB version wrote the archive",
            *_rewrite_versions(path),
        )]
    if not database.exists():
        return [Problem(
            "database-file", f"{location} has {VERSIONS_FILE} but no {DATABASE_FILE}: the archive's database is gone "
            "(restore it, or remove the directory to start a new archive)",
        )]
    if storage_version(database) is None:
        return [Problem(
            "database-file", f"the database file {database} is damaged ({database.stat().st_size} bytes, not a "
            "LadybugDB database): restore it from a backup, or remove the archive and ingest again",
        )]
    if written.get("format") != FORMAT or written_minor != ladybug_minor():
        return [Problem(
            "versions", f"the archive at {location} was written by LadybugDB {written['ladybug']} (archive format "
            f"{written.get('format')}), this installation has LadybugDB {version('ladybug')} (format {FORMAT}); "
            f"opening it would upgrade it irreversibly: install `ladybug=={written_minor}.*` to use it, "
            "or export it with that version and ingest again",
        )]
    return []


def prepare(path: Path, read_only: bool) -> None:
    """Refuse an archive that cannot be opened (the first of :func:`directory_problems`, as an error);
    for a writer, create a new archive directory with its versions file."""
    problems = directory_problems(path, read_only)
    if problems:
        first = problems[0]
        hint = " (`netarchive check --repair` writes it again)" if first.fix is not None else ""
        kind = StoreError if first.problem == "versions" else DamagedArchive
        raise kind(first.detail + hint)
    if not (path / VERSIONS_FILE).exists():
        path.mkdir(parents=True, exist_ok=True)
        write_versions(path)


def write_versions(path: Path) -> None:
    """Record the versions writing the archive (atomically: a reader never sees half a file)."""
    temporary = path / (VERSIONS_FILE + ".tmp")
    temporary.write_text(json.dumps({"format": FORMAT, "ladybug": version("ladybug"), "netarchive": version("netarchive")}))
    os.replace(temporary, path / VERSIONS_FILE)


def storage_version(database: Path) -> int | None:
    """The storage version in a LadybugDB file's header, or None when the file is not one."""
    try:
        with open(database, "rb") as handle:
            header = handle.read(12)
    except OSError:
        return None
    if len(header) < 12 or not header.startswith(_MAGIC):
        return None
    return int.from_bytes(header[4:12], "little")


def _rewrite_versions(path: Path) -> tuple[str, object]:
    """The repair of a missing or damaged versions file: write it again when the database's storage
    version is this LadybugDB's (then opening it upgrades nothing); otherwise no repair."""
    import ladybug

    found, ours = storage_version(path / DATABASE_FILE), ladybug.Database.get_storage_version()
    if found != ours:
        return ("", None)
    return (f"write it again for this LadybugDB {version('ladybug')} (the database's storage version {found} is its own)",
            lambda: write_versions(path))


def opening_problems(path: Path, repair: bool) -> list[Problem]:
    """What goes wrong when the (otherwise sound) archive at ``path`` is opened: a damaged log, which
    ``--repair`` discards, or a damaged database file, which nothing here can mend."""
    from netarchive.store.ladybug import LadybugStore

    try:
        LadybugStore(path, read_only=not repair).close()
    except DamagedLog as error:
        return [Problem(
            "write-ahead-log", str(error).split(" and no netarchive")[0],
            "discard it (and with it any change since the database's last checkpoint)",
            lambda: LadybugStore(path, discard_damaged_log=True).close(),
        )]
    except DamagedArchive as error:
        return [Problem("database-file", str(error))]
    return []


def open_database(path: Path, *, read_only: bool, committing: bool, discard_damaged_log: bool = False):
    """Open the archive's LadybugDB database, or raise a one-line error saying what is wrong.

    ``committing``: the lock file says a netarchive commit was under way, so an unreadable log tail is
    that commit's and is discarded. A read-only open raises :class:`NeedsRecovery` where only a
    read-write open can go on (an interrupted checkpoint or commit); ``discard_damaged_log`` (for
    ``check --repair``) discards an unreadable log in any case.
    """
    import ladybug

    location, database = str(path), str(path / DATABASE_FILE)
    settings = {"read_only": read_only, "checkpoint_threshold": LOG_CHECKPOINT_BYTES}
    try:
        return ladybug.Database(database, **settings)
    except RuntimeError as error:
        text = str(error)
    if "Could not set lock" in text:
        holder = re.search(r"PID (\d+)", text)
        who = f" (process {holder.group(1)})" if holder else ""
        raise ArchiveBusy(f"the archive at {location} is in use by another netarchive{who}: wait for it to finish and try again")
    if read_only and any(marker in text for marker in _RECOVERY_PENDING):
        raise NeedsRecovery("a checkpoint of the database was interrupted")
    if (path / LOG_FILE).exists() and any(marker in text for marker in _LOG_UNREADABLE):
        if read_only and committing:
            raise NeedsRecovery("an interrupted commit left the end of the log unreadable")
        if committing or discard_damaged_log:
            try:
                return ladybug.Database(database, **settings, throw_on_wal_replay_failure=False)
            except RuntimeError as again:
                text = str(again)
        else:
            raise DamagedLog(_damaged_log_message(path, text))
    if "Cannot read checkpoint" in text:
        why = first_line(text).replace(" The database may be checkpointing; please retry later.", "")
        raise DamagedArchive(
            f"the database file {database} is damaged ({why}): restore it from a backup, "
            "or remove the archive and ingest again"
        )
    if "No space left" in text:
        raise StoreError(f"the disk holding {location} is full ({first_line(text)}): free some space and try again")
    raise StoreError(f"cannot open the archive at {location}: {first_line(text)}")


def _damaged_log_message(path: Path, text: str) -> str:
    return (
        f"the write-ahead log {path / LOG_FILE} is damaged ({first_line(text)}) and no netarchive write was "
        "interrupted: `netarchive check --repair` discards it, with any change since the database's last checkpoint"
    )
