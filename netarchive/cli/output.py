"""One way to print or save every table: ``--format table|json|csv|parquet`` and ``-o FILE`` on every
command that lists something, so scripts and notebooks get the same columns the terminal shows."""
from __future__ import annotations

import functools
import json
import math
import sys
from pathlib import Path

import click
import numpy as np
import pandas as pd

from netarchive.errors import InputError

FORMATS = ("table", "json", "csv", "parquet")
SUFFIXES = {"json": "json", "csv": "csv", "parquet": "parquet", "pq": "parquet", "txt": "table"}
"""The format an output file's suffix asks for (when ``--format`` is not given)."""


def output_options(command):
    """Add ``--format`` and ``-o/--output`` to a command (its function takes ``fmt`` and ``output``).

    ``--format parquet`` without ``-o`` is refused before the command runs, so that nothing is computed
    or written (an ingest, a ``--write``) only to fail at the end."""

    @functools.wraps(command)
    def checked(*args, fmt=None, output=None, **kwargs):
        check_output(fmt, output)
        return command(*args, fmt=fmt, output=output, **kwargs)

    checked = click.option(
        "-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
        help="Write the table to FILE (.csv, .json, .parquet or .txt) instead of the terminal.",
    )(checked)
    return click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default=None,
        help="table (the default), json (array of records), csv, or parquet (needs -o).",
    )(checked)


def emit(frame: pd.DataFrame, fmt: str | None, output: str | None, *, title: str | None = None) -> None:
    """Print ``frame`` or write it to ``output`` in ``fmt`` (guessed from the file suffix when not given)."""
    check_output(fmt, output)
    fmt = fmt or _format_from_suffix(output) or "table"
    if fmt == "parquet":
        frame.to_parquet(output, index=False)
        return
    text = {"json": _json, "csv": _csv, "table": _table}[fmt](frame, title)
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        Path(output).write_text(text if text.endswith("\n") else text + "\n")


def check_output(fmt: str | None, output: str | None) -> None:
    """Refuse ``--format parquet`` to the terminal (Parquet is a binary file format), an output file whose
    suffix names no format (``-o ls.xlsx`` would get a text table) and one in a directory that does not
    exist."""
    if fmt == "parquet" and output is None:
        raise InputError("--format parquet writes a binary file: give -o FILE.parquet")
    if output is not None and fmt is None and _format_from_suffix(output) is None:
        raise InputError(
            f"cannot tell the format of {output} from its suffix: use .csv, .json, .parquet or .txt (a table), "
            "or give --format"
        )
    check_parent(output)


def check_parent(output: str | None) -> None:
    """Refuse an output file whose directory does not exist (before any work is done)."""
    parent = Path(output).parent if output else None
    if parent is not None and not parent.is_dir():
        raise InputError(f"cannot write {output}: there is no directory {parent}")


def _format_from_suffix(output: str | None) -> str | None:
    suffix = Path(output).suffix.lower().lstrip(".") if output else ""
    return SUFFIXES.get(suffix)


def _plain(value):
    """A JSON-ready value: numpy scalars and arrays to Python, NaN to null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.ndarray, list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _json(frame: pd.DataFrame, _title) -> str:
    records = [{key: _plain(value) for key, value in row.items()} for row in frame.to_dict(orient="records")]
    return json.dumps(records, indent=2, default=str)


def _csv(frame: pd.DataFrame, _title) -> str:
    frame = frame.copy()
    for column in frame.columns[frame.dtypes == object]:  # nodes, relationships, lists: as the table shows them
        frame[column] = frame[column].map(lambda value: _cell(value) if isinstance(value, (dict, list)) else value)
    return frame.to_csv(index=False)


def _table(frame: pd.DataFrame, title) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_edge=False, header_style="bold")
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(str(column), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(value) for value in row))
    console = Console(file=sys.stdout, width=100_000, force_terminal=False)  # columns at natural width, never cut
    with console.capture() as captured:
        console.print(table)
    if frame.empty:  # the title still says what was asked (for `ls`: where the archive is)
        return f"{title}\n(no rows)\n" if title else "(no rows)\n"
    return "\n".join(line.rstrip() for line in captured.get().splitlines()) + "\n"


KEY_PROPERTIES = {"Run": ("name",), "Checkpoint": ("run", "level"), "Neuron": ("run", "level", "group", "index"),
                  "SYNAPSE": ("w", "layer", "ky", "kx"), "CONNECTION": ("kind",), "HAS_CHECKPOINT": ()}
"""What a node or relationship of each label shows in a table: its key (other labels show every property)."""


def _cell(value) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_cell(item) for item in value) + "]"
    if isinstance(value, dict):
        return _graph_text(value)
    return str(value)


def _graph_text(value: dict) -> str:
    """A node ``(:Neuron {run: 'r', level: 3, group: 1, index: 7})``, a relationship ``[:SYNAPSE {w: 0.25, layer: 0}]``,
    a path of them, or a map, in Cypher's own notation (values as :meth:`Store.cypher` gives them)."""
    if "_path" in value:
        return "-".join(_graph_text(item) for item in value["_path"])
    for kind, brackets in (("_label", "()"), ("_type", "[]")):
        if kind in value:
            label = value[kind]
            keys = KEY_PROPERTIES.get(label, [k for k in value if k != kind])
            shown = ", ".join(f"{key}: {_literal(value[key])}" for key in keys if key in value)
            return f"{brackets[0]}:{label}{' {' + shown + '}' if shown else ''}{brackets[1]}"
    return "{" + ", ".join(f"{key}: {_literal(item)}" for key, item in value.items()) + "}"


def cypher_literal(value, number=repr) -> str:
    """``value`` as a Cypher literal: strings quoted and escaped, true/false/null, numbers by ``number``."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, (int, float)):
        return number(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _literal(value) -> str:
    return cypher_literal(value, number=_cell) if not isinstance(value, (list, dict)) else _cell(value)
