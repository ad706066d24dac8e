"""``netarchive query``: Cypher against the archive, and (from other modules) the analyses."""
from __future__ import annotations

import re
from pathlib import Path

import click

from netarchive.cli import cli
from netarchive.cli.common import open_archive, parse_number, parse_pairs, server_archive
from netarchive.cli.output import cypher_literal, emit, output_options
from netarchive.errors import InputError


@cli.group()
def query():
    """Ask the archive a question: Cypher, or one of the network analyses."""


@query.command("cypher")
@click.argument("statement", required=False)
@click.option("-f", "--file", "path", type=click.Path(exists=True, dir_okay=False), help="Read the statement from FILE.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A query parameter ($KEY); numbers are parsed.")
@click.option("--browser-link", is_flag=True, help="Print a Neo4j Browser link that opens the query pre-filled, instead of running it.")
@click.option("--browser-url", default="http://localhost:7474/browser/", show_default=True, help="Neo4j Browser for --browser-link.")
@output_options
def cypher(statement, path, params, browser_link, browser_url, fmt, output):
    """Run one read-only Cypher STATEMENT; user values go in as --param, never into the text.

    Example: netarchive query cypher "MATCH (c:Checkpoint {run: \\$run}) RETURN c.level, c.edges" --param run=r1
    """
    if (statement is None) == (path is None):
        raise InputError("give a Cypher statement or -f FILE (one of the two)")
    text, defaults = browser_params(Path(path).read_text() if path else statement)
    if browser_link:
        if not server_archive():
            raise InputError("Neo4j Browser needs the Neo4j backend: give --store neo4j://HOST:7687 (the embedded "
                             "archive runs the statement itself: leave out --browser-link)")
        click.echo(browser_link_for(text, {**defaults, **parse_pairs(params, "--param", numbers=True)}, browser_url))
        return
    values = {**defaults, **parse_pairs(params, "--param", numbers=True)}
    missing = [name for name in statement_parameters(text) if name not in values]
    if missing:  # LadybugDB would read a missing parameter as null and answer with no rows
        raise InputError(f"the statement uses ${missing[0]}: give it with --param {missing[0]}=VALUE")
    with open_archive() as archive:
        emit(archive.cypher(text, **values), fmt, output)


_STRINGS_AND_COMMENTS = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|//[^\n]*|/\*.*?\*/""", re.S)
_PARAMETER = re.compile(r"\$`?(\w+)`?")


def statement_parameters(text: str) -> list[str]:
    """The ``$name`` parameters a Cypher statement uses (outside strings and comments), in order."""
    return list(dict.fromkeys(_PARAMETER.findall(_STRINGS_AND_COMMENTS.sub(" ", text))))


_BROWSER_PARAM = re.compile(r"^\s*:param\s+`?(\w+)`?\s*=>\s*(.+?)\s*;?\s*$")
_LITERAL = re.compile(r"""^(?:'(?P<single>(?:[^'\\]|\\.)*)'|"(?P<double>(?:[^"\\]|\\.)*)"|(?P<other>[-+\w.]+))$""")
_ESCAPE = re.compile(r"\\(.)")


def browser_params(text: str) -> tuple[str, dict]:
    """Split a Neo4j Browser script into its one statement and the defaults of its ``:param`` lines.

    ``:param run => 'r1';`` lines (a string, number, true/false or null literal) become parameter
    defaults that ``--param`` overrides, so the files in cypher/ run unchanged in Browser and here.
    """
    defaults, kept = {}, []
    for line in text.splitlines():
        found = _BROWSER_PARAM.match(line)
        if not found:
            if line.strip().startswith(":"):
                raise InputError(f"cannot run the Browser command {line.strip()!r} here (only :param NAME => literal)")
            kept.append(line)
            continue
        name, value = found.groups()
        literal = _LITERAL.match(value)
        if literal is None:
            raise InputError(f":param {name} => {value}: only string, number, true/false and null literals are read")
        if literal["other"] is None:
            quoted = literal["single"] if literal["single"] is not None else literal["double"]
            defaults[name] = _ESCAPE.sub(r"\1", quoted)
        else:
            defaults[name] = _bare_literal(name, literal["other"])
    statement = "\n".join(kept).strip().removesuffix(";").strip()
    return statement, defaults


def _bare_literal(name: str, text: str):
    words = {"true": True, "false": False, "null": None}
    if text.lower() in words:
        return words[text.lower()]
    number = parse_number(text)
    if not isinstance(number, str):
        return number
    raise InputError(f":param {name} => {text}: only string, number, true/false and null literals are read")


def browser_link_for(statement: str, params: dict, browser_url: str) -> str:
    """A Neo4j Browser link (``?cmd=edit&arg=...``) that opens ``:param`` lines and the statement in the editor."""
    from urllib.parse import quote

    lines = [f":param {name} => {cypher_literal(value)};" for name, value in params.items()]
    script = "\n".join([*lines, statement + ";"])
    return f"{browser_url}?cmd=edit&arg={quote(script, safe='')}"

