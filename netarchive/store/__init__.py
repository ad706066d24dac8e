"""Open an archive by location: a filesystem path is the embedded LadybugDB archive, a ``neo4j://``,
``bolt://`` or ``neo4j+s://`` URI a Neo4j server. Nothing outside this package imports a backend."""
from __future__ import annotations

import os
from pathlib import Path

from netarchive.store.base import Store

SERVER_SCHEMES = ("neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://")


def default_location() -> Path:
    """``$NETARCHIVE_STORE``, else ``$XDG_DATA_HOME/netarchive/archive`` (``~/.local/share/...``)."""
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "netarchive" / "archive"


def open_store(
    location: str | os.PathLike | None = None,
    *,
    read_only: bool = False,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
) -> Store:
    """Open the archive at ``location`` (default: :func:`default_location`) for reading or writing.

    For a server URI, ``user``/``password`` default to ``$NEO4J_USERNAME``/``$NEO4J_PASSWORD`` and
    ``database`` to ``$NEO4J_DATABASE`` or ``neo4j``; they are ignored for an archive directory.
    """
    location = str(location or os.environ.get("NETARCHIVE_STORE") or default_location())
    if location.startswith(SERVER_SCHEMES):
        from netarchive.store.neo4j import Neo4jStore

        return Neo4jStore(location, user=user, password=password, database=database, read_only=read_only)
    from netarchive.store.ladybug import LadybugStore

    return LadybugStore(location, read_only=read_only)


__all__ = ["Store", "open_store", "default_location"]
