"""``query components|percolation|threshold|degrees`` and ``plot percolation|degrees`` (see docs/percolation.md).

Each reads the channel graph (a convolution's neurons are its channels, one synapse per kernel weight;
residual additions, concatenations and flattens are permanent edges), or with ``--unroll`` the unit graph
of (channel, y, x) (:mod:`netarchive.analysis.graphs`)."""
from __future__ import annotations

import click
import numpy as np
import pandas as pd

from netarchive.analysis import components as components_analysis
from netarchive.analysis import degrees as degrees_analysis
from netarchive.analysis import percolation as percolation_analysis
from netarchive.cli.common import analysis_table, checkpoint_options, each_checkpoint, open_archive
from netarchive.cli.output import emit, output_options
from netarchive.cli.plot import (
    COLUMN, PAGE, colour_by_sparsity, kept_axis, new_figure, output_file_option, plot, save_figure,
)
from netarchive.cli.query import query
from netarchive.errors import InputError
from netarchive.model import UNROLL_MAX_EDGES, Checkpoint


def _unroll_option(command):
    return click.option(
        "--unroll", is_flag=True,
        help=f"On the unit graph of (channel, y, x) with its Toeplitz edges instead of the channel graph "
             f"(up to {UNROLL_MAX_EDGES:,} edges).")(command)


def _refuse_unrolled_write(write: bool, unroll: bool) -> None:
    if write and unroll:
        raise InputError("--write stores values on the archived neurons (channels): it cannot be used with --unroll")


def _random_options(command):
    command = click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random orderings.")(command)
    return click.option("--samples", type=int, default=percolation_analysis.RANDOM_ORDERS, show_default=True,
                        help="Random orderings averaged (order random, measured threshold).")(command)


def _table(run, level, analysis, *, write=None, **options) -> pd.DataFrame:
    """Run ``analysis`` on (run, level) or on every level of the run (cached); ``write(archive, checkpoint)``
    also stores results on the graph."""
    if write is None:
        with open_archive() as archive:
            return analysis_table(archive, run, level, analysis, **options)
    frames = []
    with open_archive(read_only=False) as archive:
        for checkpoint in each_checkpoint(archive, run, level):
            frames.append(analysis(checkpoint, **options))
            write(archive, checkpoint)
    return pd.concat(frames, ignore_index=True)


def _write_components(archive, checkpoint):
    labels = components_analysis.component_labels(checkpoint)
    archive.set_neuron_properties(checkpoint.run, checkpoint.level, {"component": labels.astype(np.int64)})


def _write_degrees(archive, checkpoint):
    arrays = degrees_analysis.degree_arrays(checkpoint)
    archive.set_neuron_properties(checkpoint.run, checkpoint.level, {
        "degree": arrays["degree"].astype(np.int64), "strength": arrays["strength"].astype(np.float64),
    })


@query.command("components")
@checkpoint_options
@click.option("--write", is_flag=True, help="Store Neuron.component (0 = giant component) on the graph.")
@_unroll_option
@output_options
def components(run, level, write, unroll, fmt, output):
    """Connected components of each checkpoint, and whether its inputs still reach its outputs (through
    synapses and the connections of residual additions, concatenations and flattens)."""
    _refuse_unrolled_write(write, unroll)
    frame = _table(run, level, components_analysis.components, write=_write_components if write else None,
                   unroll=unroll)
    emit(frame, fmt, output)


@query.command("percolation")
@checkpoint_options
@click.option("--order", type=click.Choice(percolation_analysis.ORDERS), default="descending", show_default=True,
              help="Edges added back strongest |w| first, weakest first, or at random.")
@click.option("--points", type=int, default=101, show_default=True, help="Evenly spaced kept fractions 0 … 1.")
@_random_options
@click.option("--canonical", is_flag=True, help="Random order only: curve against occupation probability p.")
@_unroll_option
@output_options
def percolation(run, level, order, points, samples, seed, canonical, unroll, fmt, output):
    """Giant component as the synapses are added back in an order (exact at each kept fraction); the
    connections of residual additions, concatenations and flattens are always there."""
    percolation_analysis.kept_points(points, 0)  # refuse bad --points before reading anything
    frame = _table(run, level, percolation_analysis.percolation, order=order, points=points, samples=samples,
                   seed=seed, canonical=canonical, unroll=unroll)
    emit(frame, fmt, output)


@query.command("threshold")
@checkpoint_options
@_random_options
@_unroll_option
@output_options
def threshold(run, level, samples, seed, unroll, fmt, output):
    """Percolation thresholds: Molloy–Reed, branching, measured (random orders) and the seed's 1/(2N−1)."""
    emit(_table(run, level, percolation_analysis.thresholds, samples=samples, seed=seed, unroll=unroll), fmt, output)


@query.command("degrees")
@checkpoint_options
@click.option("--summary", is_flag=True, help="Per layer and network: <k>, <k^2> and power-law fits.")
@click.option("--write", is_flag=True, help="Store Neuron.degree and Neuron.strength on the graph.")
@_unroll_option
@output_options
def degrees(run, level, summary, write, unroll, fmt, output):
    """Degree and strength of every neuron (or, with --summary, their moments and heavy-tail fits), over
    synapses (kernel weights); connections are not synapses."""
    _refuse_unrolled_write(write, unroll)
    analysis = degrees_analysis.degree_summary if summary else degrees_analysis.degrees
    emit(_table(run, level, analysis, write=_write_degrees if write else None, unroll=unroll), fmt, output)


# --- plots ----------------------------------------------------------------------------------------------

ORDER_STYLES = {"descending": "-", "ascending": "--", "random": ":"}
ORDER_NAMES = {"descending": "strongest |w| kept first", "ascending": "weakest |w| kept first", "random": "random order"}
THRESHOLD_MARKS = {"p_c_measured": ("measured", "o"), "p_c_molloy_reed": ("Molloy–Reed", "v"),
                   "p_c_branching": ("branching", "s"), "p_c_seed": ("1/(2N−1)", "D")}
KEPT_LABEL = "synapses kept (fraction of the checkpoint's)"


def mark_threshold(axis, j: int, name: str, value: float, label: bool = True) -> None:
    """The ``j``-th threshold of :data:`THRESHOLD_MARKS` as a vertical line, labelled with its value."""
    axis.axvline(value, color="0.35", linestyle=["-", "--", "-.", ":"][j], linewidth=0.8,
                 label=f"p_c {name} = {value:.3g}" if label else None)


def _checkpoints(run, level):
    with open_archive() as archive:
        return list(each_checkpoint(archive, run, level))


def _title(run: str, checkpoints) -> str:
    if len(checkpoints) == 1:
        return f"{run}, level {checkpoints[0].level} (sparsity {checkpoints[0].sparsity:.1%})"
    return f"{run}, {len(checkpoints)} levels"


def _graph_note(checkpoint, unroll: bool, connections: bool = True) -> str:
    """Which graph a figure shows, for networks other than plain MLPs, as a second line of its title:
    "channel graph, connections always present" (``connections``: say that they are, where the figure
    follows them)."""
    convolutional = any(layer.conv is not None for layer in checkpoint.layers)
    if not (unroll or convolutional or checkpoint.connections):
        return ""
    kept = ", connections always present" if connections and checkpoint.connections else ""
    return f"\n{'unrolled unit graph' if unroll else 'channel graph'}{kept}"


@plot.command("percolation")
@checkpoint_options
@_random_options
@_unroll_option
@output_file_option
def plot_percolation(run, level, samples, seed, unroll, output):
    """Giant component against the synapses kept (log axis) in three orders, with the thresholds marked."""
    draw_percolation(_checkpoints(run, level), output, samples=samples, seed=seed, unroll=unroll)


def draw_percolation(checkpoints: list[Checkpoint], output: str, samples: int = percolation_analysis.RANDOM_ORDERS,
                     seed: int = 0, unroll: bool = False) -> None:
    """The figure of ``plot percolation`` for ``checkpoints`` (one, or the levels of one run, overlaid)."""
    from matplotlib.lines import Line2D

    run = checkpoints[0].run
    single = len(checkpoints) == 1
    figure, axis = new_figure(figsize=(COLUMN, 3.3))
    colours = colour_by_sparsity(figure, axis, checkpoints)
    lows, marked = [], set()
    for checkpoint, colour in zip(checkpoints, colours):
        kept = np.geomspace(1 / max(checkpoint.edges, 1), 1, 300)
        for i, order in enumerate(percolation_analysis.ORDERS):
            curve = percolation_analysis.percolation(checkpoint, order, samples=samples, seed=seed, kept=kept, unroll=unroll)
            axis.plot(curve["kept"], curve["giant_fraction"], ORDER_STYLES[order], drawstyle="steps-post",
                      color=f"C{i}" if single else colour, label=ORDER_NAMES[order] if single else None)
        marks = percolation_analysis.thresholds(checkpoint, samples=samples, seed=seed, unroll=unroll).iloc[0]
        finite = [v for v in marks[list(THRESHOLD_MARKS)].astype(float) if np.isfinite(v) and v > 0]
        lows.append(max(kept[0], min(finite, default=1) / 10))
        for j, (column, (name, marker)) in enumerate(THRESHOLD_MARKS.items()):
            if not np.isfinite(marks[column]):
                continue
            marked.add(column)
            if single:
                mark_threshold(axis, j, name, marks[column])
            else:  # a row of markers per threshold above the curves
                axis.plot([marks[column]], [1.08 + 0.06 * j], marker, color=colour, markersize=3)
    kept_axis(axis, KEPT_LABEL)
    axis.set_xlim(min(lows), 1.05)
    axis.set_ylabel("giant component\n(fraction of neurons)")
    axis.set_ylim(0, 1.06 if single else 1.3)
    axis.set_yticks(np.linspace(0, 1, 6))
    axis.set_title(f"Percolation: {_title(run, checkpoints)}{_graph_note(checkpoints[0], unroll)}")
    if single:
        figure.legend(loc="outside lower center", ncol=2)
    else:  # colour is the sparsity (colour bar); line style the order, marker the threshold
        grey = dict(color="0.3")
        handles = [Line2D([], [], linestyle=ORDER_STYLES[o], label=ORDER_NAMES[o], **grey) for o in ORDER_STYLES]
        handles += [Line2D([], [], linestyle="", marker=m, label=f"p_c {n}", **grey)
                    for column, (n, m) in THRESHOLD_MARKS.items() if column in marked]  # (1/(2N−1): chains only)
        figure.legend(handles=handles, loc="outside lower center", ncol=2)
    save_figure(figure, output)


def _ccdf(axis, values, colour, label, fit):
    """Empirical complementary CDF of the positive values, and the fitted power-law tail scaled to it."""
    positive = values[values > 0]
    if not len(positive):
        return
    x, counts = np.unique(positive, return_counts=True)
    ccdf = (len(positive) - np.cumsum(counts) + counts) / len(positive)
    axis.plot(x, ccdf, ".", color=colour, markersize=2.5, label=label)
    if np.isfinite(fit["alpha"]):
        share = np.mean(positive >= fit["xmin"])
        grid = np.geomspace(fit["xmin"], x[-1], 50)
        axis.plot(grid, share * (grid / fit["xmin"]) ** (1 - fit["alpha"]), "-", color=colour, linewidth=1,
                  label=f"power law α = {fit['alpha']:.2f} (x ≥ {fit['xmin']:.3g})" if label else None)


@plot.command("degrees")
@checkpoint_options
@_unroll_option
@output_file_option
def plot_degrees(run, level, unroll, output):
    """Complementary CDFs of degree and |strength| (log–log) with the fitted power laws."""
    draw_degrees(_checkpoints(run, level), output, unroll=unroll)


def draw_degrees(checkpoints: list[Checkpoint], output: str, unroll: bool = False) -> None:
    """The figure of ``plot degrees`` for ``checkpoints`` (one, or the levels of one run, overlaid)."""
    from matplotlib.lines import Line2D

    run = checkpoints[0].run
    single = len(checkpoints) == 1
    figure, axes = new_figure(1, 2, figsize=(PAGE if not single else COLUMN * 1.6, 2.6))
    colours = colour_by_sparsity(figure, list(axes), checkpoints)
    for checkpoint, colour in zip(checkpoints, colours):
        arrays = degrees_analysis.degree_arrays(checkpoint, unroll)
        for axis, (quantity, discrete) in zip(axes, degrees_analysis.SUMMARY_QUANTITIES.items()):
            values = arrays[quantity].astype(np.float64)
            fit = degrees_analysis.fit_heavy_tail(values, discrete=discrete)
            _ccdf(axis, values, colour, "neurons" if single else None, fit)
    for axis, name in zip(axes, ("degree k (synapses of a neuron)", "|strength| |S| (|Σ w| of its synapses)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel(name)
        axis.set_ylabel("P(X ≥ x)")
        if single and axis.get_legend_handles_labels()[0]:  # nothing drawn for a checkpoint without synapses
            axis.legend(loc="lower left")
    if not single:
        grey = dict(color="0.3")
        figure.legend(handles=[Line2D([], [], linestyle="", marker=".", label="neurons (one colour per level)", **grey),
                               Line2D([], [], label="fitted power-law tail", **grey)], loc="outside lower center", ncol=2)
    figure.suptitle(f"Degree and strength distributions: {_title(run, checkpoints)}{_graph_note(checkpoints[0], unroll, False)}")
    save_figure(figure, output)
