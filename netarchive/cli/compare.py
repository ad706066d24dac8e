"""``netarchive query compare`` (masks across runs) and ``query survival`` (across the levels of a run)."""
from __future__ import annotations

import click
import numpy as np
import pandas as pd

from netarchive.analysis.compare import compare_runs, survival
from netarchive.cli.common import each_checkpoint, open_archive, run_selection_options, selected_runs
from netarchive.cli.output import emit, output_options
from netarchive.cli.plot import PAGE, layer_label, new_figure, output_file_option, plot, save_figure
from netarchive.cli.query import query
from netarchive.errors import InputError, compact_ranges
from netarchive.model import Checkpoint


def runs_to_compare(archive, runs_text: str | None, where) -> list[str]:
    """The selected runs (default: every run), at least two."""
    runs = selected_runs(archive, runs_text, where=where)
    if len(runs) < 2:
        raise InputError(f"comparing needs at least two runs; the selection has {', '.join(runs) or 'none'}")
    return runs


def common_levels(archive, runs: list[str], level: int | None, every: bool) -> list[int]:
    """The levels to compare: ``level``, or every common level, or the last level all runs have."""
    common = sorted(set.intersection(*(set(archive.levels(run)) for run in runs)))
    if not common:
        raise InputError(f"the runs {', '.join(runs)} have no level in common")
    if level is not None and level not in common:
        raise InputError(f"level {level} is not archived for every run (common levels: {compact_ranges(common)})")
    return common if every else [common[-1] if level is None else level]


_RUNS_HELP = "Runs of one architecture: names or globs, comma-separated ('seed*'; default: all)."


@query.command("compare")
@run_selection_options(_RUNS_HELP)
@click.option("--level", type=int, help="The level to compare (default: the last level all runs have).")
@click.option("--levels", "all_levels", is_flag=True, help="Compare at every level the runs have in common.")
@output_options
def compare(runs_text, where, level, all_levels, fmt, output):
    """Mask Jaccard (and its chance level), weight and degree correlations between every pair of runs."""
    with open_archive() as archive:
        runs = runs_to_compare(archive, runs_text, where)
        levels = common_levels(archive, runs, level, all_levels)
        tables = [compare_runs([archive.checkpoint(run, each) for run in runs]) for each in levels]
    emit(pd.concat(tables, ignore_index=True), fmt, output)


@query.command("survival")
@click.option("--run", required=True, help="Name of the archived run.")
@output_options
def survival_command(run, fmt, output):
    """Synapses kept from each level to the next, and whether the survivors were the strongest."""
    with open_archive() as archive:
        if len(archive.levels(run)) < 2:
            raise InputError(f"run {run!r} has one level: survival needs at least two")
        table = survival(each_checkpoint(archive, run, None))  # two checkpoints in memory at a time
    emit(table, fmt, output)


@plot.command("compare")
@run_selection_options(_RUNS_HELP)
@click.option("--level", type=int, help="The level to compare (default: the last level all runs have).")
@output_file_option
def plot_compare(runs_text, where, level, output):
    """Heat maps of the mask Jaccard index between every pair of runs, one per layer, values in the cells
    and the chance level (random masks of the same densities) in each title."""
    with open_archive() as archive:
        runs = runs_to_compare(archive, runs_text, where)
        [level] = common_levels(archive, runs, level, False)
        checkpoints = [archive.checkpoint(run, level) for run in runs]
    draw_compare(checkpoints, output)


def draw_compare(checkpoints: list[Checkpoint], output: str) -> None:
    """The figure of ``plot compare`` for ``checkpoints`` (one level of several runs of one architecture):
    one panel per weight layer, as many to a row as the page holds."""
    import matplotlib

    runs = [c.run for c in checkpoints]
    table = compare_runs(checkpoints)
    jaccard = table[table.metric == "jaccard"]
    chance = table[table.metric == "jaccard_expected"].groupby("layer").value.mean()
    layers = sorted(jaccard.layer.unique())
    norm = matplotlib.colors.Normalize(*_colour_range(jaccard.value.to_numpy(), chance.to_numpy()))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.9")
    side = 0.28 * len(runs) + 0.9
    if len(layers) > 6:  # a deep network: six panels to a row, a page-high figure at most
        side = max(0.28 * len(runs) + 0.3, min(side, (PAGE - 0.8) / 6))
    across = max(1, min(len(layers), int((PAGE - 0.8) // side)))
    down = -(-len(layers) // across)
    figure, axes = new_figure(down, across, figsize=(min(PAGE, side * across + 0.8), (side + 0.5) * down + 0.4),
                              squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(layers):
            ax.set_visible(False)
            continue
        layer = layers[k]
        matrix = np.full((len(runs), len(runs)), np.nan)  # the diagonal (1) would set the scale: left out
        for row in jaccard[jaccard.layer == layer].itertuples():
            i, j = runs.index(row.run_a), runs.index(row.run_b)
            matrix[i, j] = matrix[j, i] = row.value
        ax.imshow(matrix, norm=norm, cmap=cmap)
        if len(runs) <= 12:
            for (i, j), value in np.ndenumerate(matrix):
                if np.isfinite(value):
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if norm(value) < 0.5 else "black")
        expected = f"chance {chance[layer]:.2f}" if np.isfinite(chance[layer]) else "no synapses left"
        name = layer_label(checkpoints[0].layers[int(layer)], int(layer))
        ax.set_title(f"{name if down == 1 else name.replace(' (', chr(10) + '(', 1)}\n{expected}",  # narrow panels: module below
                     fontsize=7 if down == 1 else 6)
        bottom = k + across >= len(layers)  # run names under the last panel of each column, left of each row
        ax.set_xticks(range(len(runs)), runs if bottom else [], rotation=90)
        ax.set_yticks(range(len(runs)), runs if k % across == 0 else [])
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    figure.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes.ravel().tolist(), shrink=0.8,
                    label="mask Jaccard index")
    level = sorted({c.level for c in checkpoints})
    figure.suptitle(f"Mask overlap between runs at level {level[0] if len(level) == 1 else level}")
    save_figure(figure, output)


def _colour_range(values: np.ndarray, chance: np.ndarray) -> tuple[float, float]:
    """The colour scale of the off-diagonal Jaccard values, down to the chance level so that "no more
    overlap than random masks" is the bottom colour."""
    finite = values[np.isfinite(values)]
    low = min(finite.min(initial=1.0), chance.min(initial=1.0))
    high = max(finite.max(initial=0.0), low + 1e-6)
    return low, high
