"""``netarchive query``: Cypher against the archive, and (from other modules) the analyses."""
from __future__ import annotations

from pathlib import Path

import click

from netarchive.cli import cli
from netarchive.cli.common import open_archive, parse_pairs
from netarchive.cli.output import emit, output_options
from netarchive.errors import InputError


@cli.group()
def query():
    """Ask the archive a question: Cypher, or one of the network analyses."""


@query.command("cypher")
@click.argument("statement", required=False)
@click.option("-f", "--file", "path", type=click.Path(exists=True, dir_okay=False), help="Read the statement from FILE.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A query parameter ($KEY); numbers are parsed.")
@output_options
def cypher(statement, path, params, fmt, output):
    """Run one read-only Cypher STATEMENT; user values go in as --param, never into the text.

    Example: netarchive query cypher "MATCH (c:Checkpoint {run: \\$run}) RETURN c.level, c.edges" --param run=r1
    """
    if (statement is None) == (path is None):
        raise InputError("give a Cypher statement or -f FILE (one of the two)")
    text = Path(path).read_text() if path else statement
    with open_archive() as archive:
        emit(archive.cypher(text, **parse_pairs(params, '--param', numbers=True)), fmt, output)

