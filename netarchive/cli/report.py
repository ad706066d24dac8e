"""``netarchive report``: a self-contained HTML page of a study, for a lab meeting or a supplement.

It says what was measured on what (the runs with their labels: dataset, seed, model, …; netarchive's and
the database's versions; the date), gives the summary table with a glossary of its columns, and the
figures: metrics against sparsity, mask overlap between runs, motif z-scores, and for the first run
percolation, structure against function (with ``--data``), neural persistence and locality."""
from __future__ import annotations

import html
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import click
import pandas as pd

from netarchive.cli import cli
from netarchive.cli.common import open_archive
from netarchive.cli.study import draw_summary, glossary_table, selection_options, summary_table
from netarchive.errors import InputError

RUN_LABELS = ("dataset", "seed", "model")
"""Labels of a run (``ingest --meta``) shown first in the report, when the runs have them."""


@cli.command()
@selection_options
@click.option("--data", type=click.Path(), default=None,
              help="Test set (.npz with x, y) for the structure-and-function figure of the first run.")
@click.option("-o", "--output", "directory", required=True, type=click.Path(file_okay=False),
              help="Directory to write index.html and its figures to.")
def report(run, runs_text, where, jobs, samples, data, directory):
    """A self-contained HTML report of a study: runs, summary table, glossary and figures."""
    out = Path(directory)
    with open_archive() as archive:
        table = summary_table(archive, run, runs_text, where, jobs, samples)
        if table.empty:
            raise InputError("the archive has no checkpoints to report on")
        labels = archive.runs()
        about = {"archive": archive.location, "backend": archive.backend}
    out.mkdir(parents=True, exist_ok=True)
    figures = [("summary.png", "Metrics against the weights remaining")]
    draw_summary(table, str(out / "summary.png"))
    context = click.get_current_context()
    for name, title, command, options in _figures(table, data):
        context.invoke(command, **options, output=str(out / name))
        figures.append((name, title))
    (out / "index.html").write_text(_page(table, _run_table(table, labels), about, figures))
    click.echo(f"wrote {out / 'index.html'}")


def _figures(table: pd.DataFrame, data: str | None):
    """(file, caption, command, options) of the figures after the summary."""
    from netarchive.cli.compare import plot_compare
    from netarchive.cli.evaluate import plot_robustness
    from netarchive.cli.locality import plot_locality
    from netarchive.cli.motifs import plot_motifs
    from netarchive.cli.percolation import plot_percolation
    from netarchive.cli.spanning import plot_persistence

    runs = sorted(table.run.unique())
    if len(runs) > 1:
        yield "compare.png", "Mask overlap between runs", plot_compare, {"runs_text": ",".join(runs), "where": (), "level": None}
    yield "motifs.png", "Motif z-scores against the weights remaining (exact fixed null)", plot_motifs, dict(
        run=None, runs_text=",".join(runs), where=(), level=None, null="fixed", signed=False, chain_pairs=False, prune_dead=False,
        samples=1000, seed=0, sample=False, motif_names=(), over_sparsity=True)
    first = runs[0]
    last = int(table[table.run == first].level.max())
    yield "percolation.png", f"Percolation of {first}, level {last}", plot_percolation, {"run": first, "level": last}
    if data is not None:
        for level in sorted({0, last} & set(table[table.run == first].level)):
            yield (f"robustness_{level}.png", f"Structure and function of {first}, level {level}", plot_robustness,
                   {"run": first, "level": level, "data": data})
    yield "persistence.png", f"Neural persistence of {first}", plot_persistence, {"run": first}
    if table[table.run == first].locality.notna().any():
        yield "locality.png", f"First-layer masks of {first}, level {last}", plot_locality, {"run": first, "level": last}


def _run_table(table: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """One row per reported run: its levels, its sparsity range and its labels (dataset, seed, model first)."""
    rows = []
    for run, part in table.groupby("run", sort=True):
        rows.append({"run": run, "levels": f"{part.level.min()}–{part.level.max()} ({len(part)})",
                     "sparsity": f"{part.sparsity.min():.1%} – {part.sparsity.max():.1%}"})
    frame = pd.DataFrame(rows)
    if not labels.empty:
        frame = frame.merge(labels, on="run", how="left")
    first = [column for column in RUN_LABELS if column in frame]
    rest = [column for column in frame.columns if column not in ("run", "levels", "sparsity", *first)]
    return frame[["run", *first, "levels", "sparsity", *rest]]


def _html_table(frame: pd.DataFrame, **options) -> str:
    return frame.to_html(index=False, na_rep="", border=0, **options)


def _page(table: pd.DataFrame, runs: pd.DataFrame, about: dict, figures) -> str:
    summary = _html_table(table, float_format=lambda v: f"{v:.4g}", classes="summary")
    images = "\n".join(
        f'<figure><img src="{html.escape(name)}" alt="{html.escape(title)}"><figcaption>{html.escape(title)}'
        "</figcaption></figure>" for name, title in figures
    )
    made = (f"netarchive {version('netarchive')} · {about['backend']} · archive {about['archive']} · "
            f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>netarchive report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}table{{border-collapse:collapse;font-size:12px}}
td,th{{padding:2px 6px;border-bottom:1px solid #ddd;text-align:right}}.glossary td{{text-align:left}}
figure{{margin:2em 0}}img{{max-width:100%}}.wide{{overflow-x:auto}}.made{{color:#555}}</style></head>
<body><h1>netarchive report</h1>
<p class="made">{html.escape(made)}</p>
<h2>Runs</h2><div class="wide">{_html_table(runs, classes="runs")}</div>
<h2>Summary</h2>
<p>{len(table)} checkpoints of {table.run.nunique()} run(s): one row per checkpoint; the columns are explained
<a href="#glossary">below</a>, and each equals what the analysis's own command reports.</p>
<div class="wide">{summary}</div>
<h2>Figures</h2>
{images}
<h2 id="glossary">Columns</h2>
{_html_table(glossary_table(), classes="glossary")}
</body></html>
"""
