"""The ``netarchive`` command: a thin skin over the Python API (``netarchive.open``).

Each module of this package adds the commands of one concern; errors the user can act on become one
line on stderr and a non-zero exit, anything else a one-line "unexpected error" (``--debug`` shows the
traceback).
"""
from __future__ import annotations

import click

from netarchive.cli.common import Settings
from netarchive.errors import NetarchiveError

EXIT_ERROR, EXIT_INTERRUPTED = 1, 130


class _Main(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted: the archive is as it was before this command's unfinished write", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as error:  # noqa: BLE001 - the one place that turns errors into messages
            settings = ctx.find_object(Settings)
            if settings is not None and settings.debug:
                raise
            click.echo(f"error: {_message(error)}", err=True)
            ctx.exit(EXIT_ERROR)


def _message(error: Exception) -> str:
    if isinstance(error, NetarchiveError):
        return str(error)
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}"
    return f"unexpected {type(error).__name__}: {error} (run with --debug for the traceback and report it)"


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store", envvar="NETARCHIVE_STORE", default=None, metavar="PATH|URI",
    help="Archive directory (embedded, the default) or neo4j:// URI. Env: NETARCHIVE_STORE.",
)
@click.option("--user", envvar="NEO4J_USERNAME", default=None, help="Neo4j user (default neo4j). Env: NEO4J_USERNAME.")
@click.option("--password", envvar="NEO4J_PASSWORD", default=None, help="Neo4j password. Env: NEO4J_PASSWORD.")
@click.option(
    "--database", envvar="NEO4J_DATABASE", default=None, help="Neo4j database (default neo4j). Env: NEO4J_DATABASE."
)
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.version_option(package_name="netarchive")
@click.pass_context
def cli(ctx, store, user, password, database, debug):
    """Archive pruned neural-network checkpoints as layered weighted graphs and query their structure."""
    ctx.obj = Settings(store=store, debug=debug, user=user, password=password, database=database)


def main() -> None:
    cli.main(prog_name="netarchive")


# Command modules register themselves on `cli` (and on the `query`/`plot` groups) when imported.
from netarchive.cli import (  # noqa: E402,F401
    archive, compare, curves, evaluate, locality, motifs, percolation, plot, query, report, server, spanning, study,
)

__all__ = ["cli", "main"]
