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
        archive.init()
    click.echo(f"archive ready at {archive.location}")


@cli.command("browser-guide")
@click.option("--port", type=int, default=8001, show_default=True, help="Port on 127.0.0.1 to serve the guide on.")
@click.option("--write", "path", type=click.Path(dir_okay=False), help="Write the guide's HTML to FILE instead of serving it.")
@click.option("--cypher-dir", type=click.Path(file_okay=False, exists=True), help="The queries to show (default: cypher/).")
def browser_guide(port, path, cypher_dir):
    """Serve a Neo4j Browser guide through the queries of cypher/ (open it with `:play URL` in Browser)."""
    from pathlib import Path

    from netarchive.browser_guide import default_cypher_dir, guide_html, serve
    from netarchive.errors import InputError

    directory = Path(cypher_dir) if cypher_dir else default_cypher_dir()
    if not directory.is_dir():
        raise InputError(f"no cypher/ folder at {directory}: give --cypher-dir")
    content = guide_html(directory)
    if path:
        Path(path).write_text(content)
        click.echo(f"wrote {path}")
        return
    httpd = serve(content, port)
    click.echo(f"in Neo4j Browser run   :play http://localhost:{port}/netarchive.html   (Ctrl-C stops)")
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
