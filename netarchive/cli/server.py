"""``netarchive init``: create an archive and its schema (for a Neo4j server: constraints and indexes)."""
from __future__ import annotations

import click

from netarchive.cli import cli
from netarchive.cli.common import open_archive


@cli.command()
def init():
    """Create the archive, or on a Neo4j server its constraints and indexes (idempotent).

    The first ingest does this too; run it on a new server, or after `neo4j-admin database import`.
    """
    with open_archive(read_only=False) as archive:
        archive.store.init()
    click.echo(f"archive ready at {archive.location}")
