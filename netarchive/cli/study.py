"""A whole study at once: ``query summary`` and ``plot summary`` (``report`` is in :mod:`netarchive.cli.report`)."""
from __future__ import annotations

import fnmatch
from contextlib import contextmanager

import click
import pandas as pd

from netarchive.analysis.percolation import RANDOM_ORDERS
from netarchive.analysis.summary import GLOSSARY, LABELS_NOTE, METRICS_NOTE
from netarchive.cli.common import open_archive, run_selection_options, selected_runs
from netarchive.cli.output import emit, output_options
from netarchive.cli.plot import (
    COLUMN, PAGE, new_figure, output_file_option, plot, remaining, remaining_axis, save_figure,
)
from netarchive.cli.query import query
from netarchive.errors import InputError

PANELS = (
    ("accuracy", "test accuracy"),
    ("giant_fraction", "giant component\n(fraction of neurons)"),
    ("inputs_connected", "inputs reaching an output\n(fraction)"),
    ("np_normalized_mean", "normalised neural\npersistence (mean of layers)"),
    ("z_chain", "z-score of chains\n(fixed null)"),
    ("locality", "locality of the first layer\nreading pixels (> 1: local)"),
)


@contextmanager
def progress_bar(description: str):
    """A bar on stderr for a job of known size (nothing when stderr is not a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda done, total: None
        return
    with Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def summary_table(archive, run, runs_text, where, jobs, samples):
    if jobs < 1:
        raise InputError("--jobs must be at least 1")
    runs = selected_runs(archive, run, runs_text, where=where)
    with progress_bar("summary") as tick:
        return archive.summary(runs, jobs=jobs, samples=samples, progress=tick)


def selection_options(command):
    command = click.option("--samples", type=int, default=RANDOM_ORDERS, show_default=True,
                           help="Random orderings for the measured percolation threshold.")(command)
    command = click.option("--jobs", type=int, default=1, show_default=True, help="Parallel processes.")(command)
    command = run_selection_options("Runs: names or globs, comma-separated ('seed*'; default: all).")(command)
    return click.option("--run", help="One run.")(command)


@query.command("summary")
@selection_options
@click.option("--columns", "columns_text", metavar="A,B,…",
              help="Only these columns (names or patterns such as 'p_c_*'), after run and level.")
@click.option("--glossary", is_flag=True, help="What every column means, instead of the table.")
@output_options
def summary(run, runs_text, where, jobs, samples, columns_text, glossary, fmt, output):
    """One row per checkpoint with every scalar of the analyses and the stored metrics (cached).

    Example: netarchive query summary --runs seed0,seed1 --columns 'sparsity,accuracy,p_c_*'
    """
    if glossary:
        emit(glossary_table(), fmt, output)
        return
    with open_archive() as archive:
        table = summary_table(archive, run, runs_text, where, jobs, samples)
    emit(table[select_columns(list(table.columns), columns_text)] if columns_text else table, fmt, output)


def glossary_table() -> pd.DataFrame:
    """Each column of the summary and its meaning, then the stored metrics and the run's labels."""
    rows = [*GLOSSARY.items(), ("(any other)", METRICS_NOTE), ("(labels)", LABELS_NOTE)]
    return pd.DataFrame(rows, columns=["column", "meaning"])


def select_columns(columns: list[str], text: str) -> list[str]:
    """``run``, ``level`` and the columns named or matched (``fnmatch`` patterns) by the comma-separated
    ``text``, in the order asked; a name or pattern that matches nothing is an error."""
    chosen = ["run", "level"]
    for pattern in (part.strip() for part in text.split(",")):
        if not pattern:
            continue
        matched = fnmatch.filter(columns, pattern)
        if not matched:
            raise InputError(f"--columns: {pattern!r} matches no column of the summary "
                             f"({', '.join(columns)}; see --glossary)")
        chosen += [column for column in matched if column not in chosen]
    return chosen


def draw_summary(table: pd.DataFrame, output: str) -> None:
    """Each metric against the weights remaining: one marked line per run, and with several runs their mean
    per level with ±1 SD."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    panels = [(column, label) for column, label in PANELS if column in table and table[column].notna().any()]
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = new_figure(rows, columns, figsize=(PAGE if columns > 1 else COLUMN, 0.6 + 1.9 * rows),
                              squeeze=False, sharex=True)
    runs = sorted(table.run.unique())
    many = len(runs) > 8  # then the runs are thin grey lines, not told apart
    for axis, (column, label) in zip(axes.flat, panels):
        for k, run in enumerate(runs):
            one = table[table.run == run].sort_values("sparsity")
            style = dict(color="0.7", linewidth=0.6) if many else dict(color=f"C{k}", marker="o", markersize=2.5, linewidth=0.9)
            axis.plot(remaining(one.sparsity), one[column], alpha=0.8 if len(runs) > 1 else 1, **style)
        if len(runs) > 1:
            by_level = table.groupby("level").agg(
                s=("sparsity", "mean"), m=(column, "mean"), d=(column, "std"), n=(column, "count"))
            by_level = by_level[by_level.n > 1]  # a mean over runs where at least two runs have the level
            axis.plot(remaining(by_level.s), by_level.m, "k-", linewidth=1.6)
            axis.fill_between(remaining(by_level.s), by_level.m - by_level.d, by_level.m + by_level.d, color="k", alpha=0.12)
        axis.set_ylabel(label)
        remaining_axis(axis)
    for axis in axes.flat[len(panels):]:
        axis.set_visible(False)
    for k, axis in enumerate(axes.flat[: len(panels)]):  # x labels and ticks on the lowest panel of each column
        if k + columns < len(panels):
            axis.set_xlabel("")
        else:
            axis.tick_params(labelbottom=True)  # (sharex hides them above the last row, which may be short)
    handles = ([] if many else [Line2D([], [], color=f"C{k}", marker="o", markersize=2.5, label=run) for k, run in enumerate(runs)])
    if many:
        handles.append(Line2D([], [], color="0.7", linewidth=0.6, label=f"each of {len(runs)} runs"))
    if len(runs) > 1:
        handles += [Line2D([], [], color="k", linewidth=1.6, label="mean over runs"), Patch(color="k", alpha=0.12, label="± 1 SD")]
    figure.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6))
    figure.suptitle(f"{runs[0]}, {len(table)} levels" if len(runs) == 1 else f"{len(runs)} runs, {len(table)} checkpoints")
    save_figure(figure, output)


@plot.command("summary")
@selection_options
@output_file_option
def plot_summary(run, runs_text, where, jobs, samples, output):
    """Accuracy and the main structural metrics against sparsity, per run and averaged over runs."""
    with open_archive() as archive:
        table = summary_table(archive, run, runs_text, where, jobs, samples)
    if table.empty:
        raise InputError("the archive has no checkpoints to plot")
    draw_summary(table, output)
