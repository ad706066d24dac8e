"""A whole study at once: ``query summary``, ``plot summary`` and ``report`` (a self-contained HTML page)."""
from __future__ import annotations

import html
from contextlib import contextmanager
from pathlib import Path

import click
import pandas as pd

from netarchive.cli import cli
from netarchive.cli.common import open_archive, run_selection_options, selected_runs
from netarchive.cli.compare import plot_compare
from netarchive.cli.output import emit, output_options
from netarchive.cli.plot import new_figure, output_file_option, plot, save_figure
from netarchive.cli.query import query
from netarchive.errors import InputError

PANELS = (
    ("accuracy", "test accuracy"),
    ("giant_fraction", "giant component / neurons"),
    ("inputs_connected", "inputs reaching an output"),
    ("np_normalized_mean", "normalised neural persistence"),
    ("z_chain", "z-score of chains (fixed null)"),
    ("locality", "locality of the first layer reading pixels"),
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


def _summary(archive, run, runs_text, where, jobs, samples):
    if jobs < 1:
        raise InputError("--jobs must be at least 1")
    runs = selected_runs(archive, run, runs_text, where=where)
    with progress_bar("summary") as tick:
        return archive.summary(runs, jobs=jobs, samples=samples, progress=tick)


def _selection(command):
    command = click.option("--samples", type=int, default=10, show_default=True,
                           help="Random orderings for the measured percolation threshold.")(command)
    command = click.option("--jobs", type=int, default=1, show_default=True, help="Parallel processes.")(command)
    command = run_selection_options("Runs: names or globs, comma-separated ('seed*'; default: all).")(command)
    return click.option("--run", help="One run.")(command)


@query.command("summary")
@_selection
@output_options
def summary(run, runs_text, where, jobs, samples, fmt, output):
    """One row per checkpoint with every scalar of the analyses, the stored metrics and the run's labels
    (cached)."""
    with open_archive() as archive:
        emit(_summary(archive, run, runs_text, where, jobs, samples), fmt, output)


def draw_summary(table: pd.DataFrame, output: str) -> None:
    """Each metric against sparsity: one thin line per run, the mean over runs per level with ±1 SD."""
    panels = [(column, label) for column, label in PANELS if column in table and table[column].notna().any()]
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = new_figure(rows, columns, figsize=(4.2 * columns, 3.3 * rows), squeeze=False, layout="constrained")
    runs = sorted(table.run.unique())
    for axis, (column, label) in zip(axes.flat, panels):
        for run in runs:
            one = table[table.run == run].sort_values("sparsity")
            axis.plot(one.sparsity, one[column], "-", linewidth=0.8, alpha=0.5 if len(runs) > 1 else 1,
                      label=run if len(runs) <= 8 else None)
        if len(runs) > 1:
            by_level = table.groupby("level").agg(
                s=("sparsity", "mean"), m=(column, "mean"), d=(column, "std"), n=(column, "count"))
            by_level = by_level[by_level.n > 1]  # a mean over runs where at least two runs have the level
            axis.plot(by_level.s, by_level.m, "k-", linewidth=2, label="mean ± SD")
            axis.fill_between(by_level.s, by_level.m - by_level.d, by_level.m + by_level.d, color="k", alpha=0.15)
        axis.set_xlabel("sparsity")
        axis.set_ylabel(label)
    for axis in axes.flat[len(panels):]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize="x-small")
    figure.suptitle(f"{len(runs)} run(s), {len(table)} checkpoints")
    save_figure(figure, output)


@plot.command("summary")
@_selection
@output_file_option
def plot_summary(run, runs_text, where, jobs, samples, output):
    """Accuracy and the main structural metrics against sparsity, per run and averaged over runs."""
    with open_archive() as archive:
        table = _summary(archive, run, runs_text, where, jobs, samples)
    if table.empty:
        raise InputError("the archive has no checkpoints to plot")
    draw_summary(table, output)


@cli.command()
@_selection
@click.option("-o", "--output", "directory", required=True, type=click.Path(file_okay=False),
              help="Directory to write index.html and its figures to.")
def report(run, runs_text, where, jobs, samples, directory):
    """A self-contained HTML report of a study: the summary table and its figures."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    with open_archive() as archive:
        table = _summary(archive, run, runs_text, where, jobs, samples)
        if table.empty:
            raise InputError("the archive has no checkpoints to report on")
        runs = sorted(table.run.unique())
    figures = [("summary.png", "Metrics against sparsity")]
    draw_summary(table, str(out / "summary.png"))
    context = click.get_current_context()
    if len(runs) > 1:
        context.invoke(plot_compare, runs_text=",".join(runs), where=(), level=None, output=str(out / "compare.png"))
        figures.append(("compare.png", "Mask overlap between runs"))
    for name, title, command, options in _per_run_figures(table, runs[0]):
        context.invoke(command, **options, output=str(out / name))
        figures.append((name, title))
    (out / "index.html").write_text(_page(table, figures))
    click.echo(f"wrote {out / 'index.html'}")


def _per_run_figures(table, run):
    """The figures of the first run: percolation of its most pruned level, persistence, locality."""
    from netarchive.cli.locality import plot_locality
    from netarchive.cli.percolation import plot_percolation
    from netarchive.cli.spanning import plot_persistence

    last = int(table[table.run == run].level.max())
    yield "percolation.png", f"Percolation of {run}, level {last}", plot_percolation, {"run": run, "level": last}
    yield "persistence.png", f"Neural persistence of {run}", plot_persistence, {"run": run}
    if table[table.run == run].locality.notna().any():
        yield "locality.png", f"First-layer masks of {run}, level {last}", plot_locality, {"run": run, "level": last}


def _page(table: pd.DataFrame, figures) -> str:
    rows = table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0, classes="summary")
    images = "\n".join(
        f'<figure><img src="{html.escape(name)}" alt="{html.escape(title)}"><figcaption>{html.escape(title)}'
        "</figcaption></figure>" for name, title in figures
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>netarchive report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}table{{border-collapse:collapse;font-size:12px}}
td,th{{padding:2px 6px;border-bottom:1px solid #ddd;text-align:right}}figure{{margin:2em 0}}img{{max-width:100%}}
.wide{{overflow-x:auto}}</style></head>
<body><h1>netarchive report</h1>
<p>{len(table)} checkpoints of {table.run.nunique()} run(s). Columns are defined in
netarchive.analysis.summary; each equals what the analysis's own command reports.</p>
<h2>Summary</h2><div class="wide">{rows}</div>
<h2>Figures</h2>
{images}
</body></html>
"""
