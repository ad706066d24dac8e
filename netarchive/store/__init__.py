"""Open an archive by location: a filesystem path is the embedded LadybugDB archive, a ``neo4j://``,
``bolt://`` or ``neo4j+s://`` URI a Neo4j server. Nothing outside this package imports a backend."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from netarchive.store.base import Store, problem_table

SERVER_SCHEMES = ("neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://")


def default_location() -> Path:
    """``$NETARCHIVE_STORE``, else ``$XDG_DATA_HOME/netarchive/archive`` (``~/.local/share/...``)."""
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "netarchive" / "archive"


def resolve_location(location: str | os.PathLike | None = None) -> str:
    """``location``, else ``$NETARCHIVE_STORE``, else :func:`default_location`."""
    return str(location or os.environ.get("NETARCHIVE_STORE") or default_location())


def open_store(
    location: str | os.PathLike | None = None,
    *,
    read_only: bool = False,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
    wait: float | None = None,
) -> Store:
    """Open the archive at ``location`` (default: :func:`resolve_location`) for reading or writing.

    For a server URI, ``user``/``password`` default to ``$NEO4J_USERNAME``/``$NEO4J_PASSWORD`` and
    ``database`` to ``$NEO4J_DATABASE`` or ``neo4j``; they are ignored for an archive directory.
    ``wait``: how long a reading store of an archive directory waits for a writer's commit before it
    gives up (default ``$NETARCHIVE_READ_RETRY_SECONDS`` or 30 s; a server isolates readers itself).
    """
    location = resolve_location(location)
    if location.startswith(SERVER_SCHEMES):
        from netarchive.store.neo4j import Neo4jStore

        return Neo4jStore(location, user=user, password=password, database=database, read_only=read_only)
    from netarchive.store.ladybug import LadybugStore

    return LadybugStore(location, read_only=read_only, wait=wait)


def preflight(location: str | os.PathLike | None = None, *, repair: bool = False) -> tuple[pd.DataFrame, bool]:
    """What keeps the archive at ``location`` from being opened (its files, its log), one row each as
    ``Store.check`` gives them, repaired where asked and possible; and whether it can be opened now."""
    location = resolve_location(location)
    if location.startswith(SERVER_SCHEMES):
        return problem_table([], repair), True
    from netarchive.store.ladybug_files import directory_problems, opening_problems

    path = Path(location).expanduser()
    table = problem_table(directory_problems(path, read_only=True), repair)
    if table["repaired"].all():
        table = pd.concat([table, problem_table(opening_problems(path, repair), repair)], ignore_index=True)
    return table, bool(table["repaired"].all())


__all__ = ["Store", "open_store", "default_location", "preflight", "resolve_location"]
