"""``query curves`` and ``plot curves``: the training curves logged with each level (an OpenLTH ``logger``)."""
from __future__ import annotations

import click
import numpy as np
import pandas as pd

from netarchive.cli.common import open_archive, run_selection_options, selected_runs
from netarchive.cli.output import emit, output_options
from netarchive.cli.plot import new_figure, output_file_option, plot, save_figure
from netarchive.cli.query import query
from netarchive.errors import InputError

PRETRAIN = "pretrain_"
"""Prefix of the curves of OpenLTH's dense pre-training phase, kept with level 0."""
DEFAULT_PANELS = ("test_accuracy", "test_loss")
_UNITS = {"accuracy": "fraction correct", "loss": "cross-entropy, nats", "examples": "count"}
_LEGEND_LEVELS = 8
"""Up to this many levels the lines get a legend; beyond it, a colour bar of the level."""


def _curves(archive, runs: list[str], metrics: tuple[str, ...], level: int | None) -> pd.DataFrame:
    """The curves of ``runs``, only ``metrics`` (all when empty) and ``level`` (all when None)."""
    table = archive.curves(runs)
    if table.empty:
        raise InputError(f"{', '.join(runs) or 'the archive'} has no training curves (they come from OpenLTH loggers at ingest)")
    _check_metrics(table, metrics)
    if metrics:
        table = table[table.metric.isin(metrics)]
    if level is not None:
        if level not in set(table.level):
            raise InputError(f"no curves at level {level} (levels with curves: {', '.join(map(str, sorted(set(table.level))))})")
        table = table[table.level == level]
    return table.reset_index(drop=True)


def _check_metrics(table: pd.DataFrame, metrics) -> None:
    unknown = [metric for metric in metrics if metric not in set(table.metric)]
    if unknown:
        raise InputError(f"no curve named {unknown[0]!r} (curves: {', '.join(dict.fromkeys(table.metric))})")


def _curve_options(command):
    command = click.option("--level", type=int, help="Only this level (default: every level).")(command)
    return click.option("--metric", "metrics", multiple=True, help="Only this curve (repeatable), e.g. test_accuracy.")(command)


@query.command("curves")
@click.option("--run", help="A run of the archive.")
@run_selection_options("Runs: names or globs, comma-separated ('seed*'; default: all).")
@_curve_options
@output_options
def curves(run, runs_text, where, metrics, level, fmt, output):
    """Training curves as one tidy table: run, level, metric, iteration, value (every logged point)."""
    with open_archive() as archive:
        table = _curves(archive, selected_runs(archive, run, runs_text, where=where), metrics, level)
    emit(table, fmt, output)


def axis_label(metric: str) -> str:
    """A reader's name for a logged metric with its unit: ``test_loss`` -> ``test loss (cross-entropy, nats)``."""
    words = metric.removeprefix(PRETRAIN).replace("_", " ")
    unit = _UNITS.get(metric.rsplit("_", 1)[-1])
    return f"{words} ({unit})" if unit else words


@plot.command("curves")
@click.option("--run", required=True, help="The archived run.")
@_curve_options
@output_file_option
def plot_curves(run, metrics, level, output):
    """Each logged metric against the training iteration, one line per pruning level (OpenLTH loggers);
    the dense pre-training phase, where there is one, as a dashed line."""
    with open_archive() as archive:
        table = _curves(archive, [run], (), level)
        sparsity = archive.checkpoints(run).set_index("level").sparsity
    _check_metrics(table, metrics)
    present = list(dict.fromkeys(table.metric))
    panels = list(metrics) or [m for m in DEFAULT_PANELS if m in present] or [m for m in present if not m.startswith(PRETRAIN)]
    draw_curves(table, panels or present, sparsity, run, output)


def draw_curves(table: pd.DataFrame, names: list[str], sparsity: pd.Series, run: str, output: str) -> None:
    """One panel per metric of ``names``, one line per level coloured by level, and the metric's
    pre-training curve (``pretrain_<metric>``) dashed where there is one."""
    import matplotlib as mpl

    levels = sorted(table[table.metric.isin(names)].level.unique())
    colours = mpl.colormaps["viridis"](np.linspace(0, 0.9, max(len(levels), 2)))
    figure, axes = new_figure(1, len(names), figsize=(4.6 * len(names) + (1.2 if len(levels) > _LEGEND_LEVELS else 0), 3.6),
                              squeeze=False, layout="constrained")
    for axis, metric in zip(axes[0], names):
        for colour, each in zip(colours, levels):
            part = table[(table.metric == metric) & (table.level == each)]
            axis.plot(part.iteration, part.value, "-", marker=".", markersize=3, linewidth=1, color=colour,
                      label=f"level {each} ({100 * sparsity.get(each, np.nan):.1f} % pruned)")
        pretrain = table[table.metric == PRETRAIN + metric]
        if not pretrain.empty:
            axis.plot(pretrain.iteration, pretrain.value, "--", color="black", linewidth=1, label="dense pre-training")
        axis.set_xlabel("training iteration (optimizer steps)")
        axis.set_ylabel(axis_label(metric))
        axis.set_title(metric.replace("_", " "), fontsize=10)
    if len(levels) <= _LEGEND_LEVELS:
        axes[0][0].legend(fontsize="x-small", title="pruning level", title_fontsize="x-small")
    else:  # too many levels for a legend: a colour bar says which colour is which level
        mappable = mpl.cm.ScalarMappable(mpl.colors.Normalize(levels[0], levels[-1]), mpl.colors.ListedColormap(colours))
        figure.colorbar(mappable, ax=axes[0].tolist(), label="pruning level")
        dashed = [line for line in axes[0][0].get_lines() if line.get_label() == "dense pre-training"]
        if dashed:
            axes[0][0].legend(handles=dashed, fontsize="x-small")
    figure.suptitle(f"training curves of run {run}")
    save_figure(figure, output)
