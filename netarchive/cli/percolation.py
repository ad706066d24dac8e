"""``query components|percolation|threshold|degrees`` and ``plot percolation|degrees`` (see docs/percolation.md)."""
from __future__ import annotations

import click
import numpy as np
import pandas as pd

from netarchive.analysis import components as components_analysis
from netarchive.analysis import degrees as degrees_analysis
from netarchive.analysis import percolation as percolation_analysis
from netarchive.cli.common import analysis_table, checkpoint_options, each_checkpoint, open_archive
from netarchive.cli.output import emit, output_options
from netarchive.cli.plot import new_figure, output_file_option, plot, save_figure
from netarchive.cli.query import query


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
@output_options
def components(run, level, write, fmt, output):
    """Connected components of each checkpoint, and whether its inputs still reach its outputs."""
    frame = _table(run, level, components_analysis.components, write=_write_components if write else None)
    emit(frame, fmt, output)


@query.command("percolation")
@checkpoint_options
@click.option("--order", type=click.Choice(percolation_analysis.ORDERS), default="descending", show_default=True,
              help="Edges added back strongest |w| first, weakest first, or at random.")
@click.option("--points", type=int, default=101, show_default=True, help="Evenly spaced kept fractions 0 … 1.")
@_random_options
@click.option("--canonical", is_flag=True, help="Random order only: curve against occupation probability p.")
@output_options
def percolation(run, level, order, points, samples, seed, canonical, fmt, output):
    """Giant component as the edges are added back in an order (exact at each kept fraction)."""
    percolation_analysis.kept_points(points, 0)  # refuse bad --points before reading anything
    frame = _table(run, level, percolation_analysis.percolation, order=order, points=points, samples=samples,
                   seed=seed, canonical=canonical)
    emit(frame, fmt, output)


@query.command("threshold")
@checkpoint_options
@_random_options
@output_options
def threshold(run, level, samples, seed, fmt, output):
    """Percolation thresholds: Molloy–Reed, branching, measured (random orders) and the seed's 1/(2N−1)."""
    emit(_table(run, level, percolation_analysis.thresholds, samples=samples, seed=seed), fmt, output)


@query.command("degrees")
@checkpoint_options
@click.option("--summary", is_flag=True, help="Per layer and network: <k>, <k^2> and power-law fits.")
@click.option("--write", is_flag=True, help="Store Neuron.degree and Neuron.strength on the graph.")
@output_options
def degrees(run, level, summary, write, fmt, output):
    """Degree and strength of every neuron (or, with --summary, their moments and heavy-tail fits)."""
    analysis = degrees_analysis.degree_summary if summary else degrees_analysis.degrees
    emit(_table(run, level, analysis, write=_write_degrees if write else None), fmt, output)


# --- plots ----------------------------------------------------------------------------------------------

_STYLES = {"descending": "-", "ascending": "--", "random": ":"}
THRESHOLD_MARKS = {"p_c_measured": ("measured", "o"), "p_c_molloy_reed": ("Molloy–Reed", "v"),
                   "p_c_branching": ("branching", "s"), "p_c_seed": ("1/(2N−1)", "D")}


def mark_threshold(axis, j: int, name: str, value: float) -> None:
    """The ``j``-th threshold of :data:`THRESHOLD_MARKS` as a labelled vertical line."""
    axis.axvline(value, color="0.4", linestyle=["-", "--", "-.", ":"][j], linewidth=0.8, label=f"{name} {value:.3g}")


def _checkpoints(run, level):
    with open_archive() as archive:
        return list(each_checkpoint(archive, run, level))


def _colours(checkpoints):
    """One colour per checkpoint, by sparsity (a colour bar when there are several)."""
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    sparsities = np.array([c.sparsity for c in checkpoints])
    low, high = sparsities.min(), max(sparsities.max(), sparsities.min() + 1e-9)
    norm = matplotlib.colors.Normalize(low, high)
    return [cmap(norm(s)) for s in sparsities], matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)


@plot.command("percolation")
@checkpoint_options
@_random_options
@output_file_option
def plot_percolation(run, level, samples, seed, output):
    """Giant fraction against kept fraction for the three orders (log axis), thresholds marked."""
    checkpoints = _checkpoints(run, level)
    figure, axis = new_figure(figsize=(8, 5))
    colours, mappable = _colours(checkpoints)
    single = len(checkpoints) == 1
    lows = []
    for checkpoint, colour in zip(checkpoints, colours):
        kept = np.geomspace(1 / max(checkpoint.edges, 1), 1, 300)
        for i, order in enumerate(percolation_analysis.ORDERS):
            curve = percolation_analysis.percolation(checkpoint, order, samples=samples, seed=seed, kept=kept)
            label = order if single else (order if checkpoint is checkpoints[0] else None)
            axis.plot(curve["kept"], curve["giant_fraction"], _STYLES[order], color=f"C{i}" if single else colour,
                      label=label, drawstyle="steps-post")
        marks = percolation_analysis.thresholds(checkpoint, samples=samples, seed=seed).iloc[0]
        finite = [v for v in marks[list(THRESHOLD_MARKS)].astype(float) if np.isfinite(v) and v > 0]
        lows.append(max(kept[0], min(finite, default=1) / 10))
        for j, (column, (name, marker)) in enumerate(THRESHOLD_MARKS.items()):
            value = marks[column]
            if not np.isfinite(value):
                continue
            if single:
                mark_threshold(axis, j, name, value)
            else:
                axis.plot([value], [1.02], marker, color=colour, clip_on=False,
                          label=name if checkpoint is checkpoints[0] else None)
    axis.set_xscale("log")
    axis.set_xlim(min(lows), 1.05)
    axis.set_xlabel("kept fraction of the checkpoint's edges")
    axis.set_ylabel("giant component / neurons")
    axis.set_ylim(0, 1.05)
    title = f"{run} level {checkpoints[0].level}" if single else f"{run}, {len(checkpoints)} levels"
    axis.set_title(f"percolation: {title}")
    axis.legend(fontsize="small", loc="upper left")
    if not single:
        figure.colorbar(mappable, ax=axis, label="sparsity")
    save_figure(figure, output)


def _ccdf(axis, values, colour, label, fit):
    """Empirical complementary CDF of the positive values, and the fitted power-law tail scaled to it."""
    positive = values[values > 0]
    if not len(positive):
        return
    x, counts = np.unique(positive, return_counts=True)
    ccdf = (len(positive) - np.cumsum(counts) + counts) / len(positive)
    axis.plot(x, ccdf, ".", color=colour, markersize=3, label=label)
    if np.isfinite(fit["alpha"]):
        share = np.mean(positive >= fit["xmin"])
        grid = np.geomspace(fit["xmin"], x[-1], 50)
        axis.plot(grid, share * (grid / fit["xmin"]) ** (1 - fit["alpha"]), "-", color=colour, linewidth=1,
                  label=f"α = {fit['alpha']:.2f}, xmin = {fit['xmin']:.3g}")


@plot.command("degrees")
@checkpoint_options
@output_file_option
def plot_degrees(run, level, output):
    """Complementary CDFs of degree and |strength| (log–log) with the fitted power laws."""
    checkpoints = _checkpoints(run, level)
    figure, axes = new_figure(1, 2, figsize=(10, 4.5))
    colours, mappable = _colours(checkpoints)
    single = len(checkpoints) == 1
    for checkpoint, colour in zip(checkpoints, colours):
        arrays = degrees_analysis.degree_arrays(checkpoint)
        for axis, (quantity, discrete) in zip(axes, degrees_analysis.SUMMARY_QUANTITIES.items()):
            values = arrays[quantity].astype(np.float64)
            fit = degrees_analysis.fit_heavy_tail(values, discrete=discrete)
            _ccdf(axis, values, "C0" if single else colour, "data" if single else None, fit)
    for axis, name in zip(axes, ("degree k", "|strength| |S|")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel(name)
        axis.set_ylabel("P(X ≥ x)")
        if single and axis.get_legend_handles_labels()[0]:  # nothing drawn for a checkpoint without synapses
            axis.legend(fontsize="small")
    title = f"{run} level {checkpoints[0].level}" if single else f"{run}, {len(checkpoints)} levels"
    figure.suptitle(f"degree and strength distributions: {title}")
    if not single:
        figure.colorbar(mappable, ax=axes[-1], label="sparsity")
    save_figure(figure, output)
