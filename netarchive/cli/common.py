"""What every command shares: the open archive and the choice of checkpoints."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import click

import netarchive
from netarchive.errors import InputError
from netarchive.model import Checkpoint


@dataclass
class Settings:
    store: str | None
    debug: bool
    user: str | None = None
    password: str | None = None
    database: str | None = None


def server_archive() -> bool:
    """Whether the global ``--store`` names a Neo4j server (rather than an embedded archive directory)."""
    from netarchive.store import SERVER_SCHEMES

    settings: Settings = click.get_current_context().find_object(Settings)
    return bool(settings.store) and settings.store.startswith(SERVER_SCHEMES)


def open_archive(read_only: bool = True) -> "netarchive.Archive":
    """Open the archive named by the global ``--store`` option (read-only unless the command writes)."""
    settings: Settings = click.get_current_context().find_object(Settings)
    server = {"user": settings.user, "password": settings.password, "database": settings.database}
    return netarchive.open(settings.store, read_only=read_only, **server)


def checkpoint_options(command):
    """Add ``--run`` (required) and ``--level`` (all levels of the run when omitted)."""
    command = click.option("--level", type=int, default=None, help="Level of the run (default: every level).")(command)
    return click.option("--run", required=True, help="Name of the archived run.")(command)


def each_checkpoint(archive: "netarchive.Archive", run: str, level: int | None) -> Iterator[Checkpoint]:
    """The checkpoint (run, level), or every checkpoint of the run in level order."""
    levels = [level] if level is not None else archive.levels(run)
    for each in levels:
        yield archive.checkpoint(run, each)


def analysis_table(archive: "netarchive.Archive", run: str, level: int | None, function, **options):
    """``function(checkpoint, **options)`` for (run, level) or every level of the run, concatenated; each
    from the archive's cache when the checkpoint has not changed since it was last computed."""
    import pandas as pd

    levels = [level] if level is not None else archive.levels(run)
    return pd.concat([archive.analyze(function, run, each, **options) for each in levels], ignore_index=True)


def parse_pairs(pairs, option: str, *, numbers: bool = False) -> dict:
    """``KEY=VALUE`` option values to a dict; with ``numbers`` integers and floats are parsed."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"{option} {pair!r} is not KEY=VALUE")
        parsed[key] = parse_number(value) if numbers else value
    return parsed


def parse_number(text: str):
    """``text`` as an int, else a float, else unchanged."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def run_selection_options(runs_help: str = "Runs: names or globs, comma-separated ('seed*', all)."):
    """A decorator adding ``--runs`` (``runs_text``) and ``--where`` (``where``, repeatable): the shared run
    selection, resolved by :func:`selected_runs`."""

    def add(command):
        command = click.option(
            "--where", "where", multiple=True, metavar="LABEL=VALUE",
            help="Only runs with this label (the value may be a glob); repeat to require several.",
        )(command)
        return click.option("--runs", "runs_text", metavar="PATTERNS", help=runs_help)(command)

    return add


def selected_runs(archive: "netarchive.Archive", *texts: str | None, where=()) -> list[str]:
    """The runs named by ``--run``/``--runs`` values (names, globs, ``all``; none given: every run) having
    every ``--where`` label; says on stderr which runs a glob, ``all`` or a label took."""
    from netarchive.selection import describe, parse_patterns, parse_where

    def announce(asked: str, runs: list[str]) -> None:
        click.echo(describe(asked, runs), err=True)

    return archive.select_runs(parse_patterns(*texts), parse_where(where), announce=announce)


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """``C,H,W`` (or ``C,L`` for 1-D inputs) to a tuple (None stays None)."""
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise InputError(f"--input-shape {text!r} must be C,H,W (or C,L for 1-D inputs), e.g. 1,28,28 or 3,32,32")
    return shape
