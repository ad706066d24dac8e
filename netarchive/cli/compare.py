"""``netarchive query compare`` (masks across runs) and ``query survival`` (across the levels of a run)."""
from __future__ import annotations

import click
import numpy as np
import pandas as pd

from netarchive.analysis.compare import compare_runs, survival
from netarchive.cli.common import each_checkpoint, open_archive, run_selection_options, selected_runs
from netarchive.cli.output import emit, output_options
from netarchive.cli.plot import layer_label, new_figure, output_file_option, plot, save_figure
from netarchive.cli.query import query
from netarchive.errors import InputError, compact_ranges


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
    """Heat maps of the mask Jaccard index between every pair of runs, one per layer."""
    with open_archive() as archive:
        runs = runs_to_compare(archive, runs_text, where)
        [level] = common_levels(archive, runs, level, False)
        checkpoints = [archive.checkpoint(run, level) for run in runs]
    table = compare_runs(checkpoints)
    jaccard = table[table.metric == "jaccard"]
    chance = table[table.metric == "jaccard_expected"].groupby("layer").value.mean()
    layers = sorted(jaccard.layer.unique())
    figure, axes = new_figure(1, len(layers), figsize=(3.2 * len(layers) + 1, 3.4), squeeze=False)
    for ax, layer in zip(axes[0], layers):
        matrix = np.eye(len(runs))
        for row in jaccard[jaccard.layer == layer].itertuples():
            i, j = runs.index(row.run_a), runs.index(row.run_b)
            matrix[i, j] = matrix[j, i] = row.value
        image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
        ax.set_title(f"{layer_label(checkpoints[0].layers[layer], layer)}  (chance {chance[layer]:.2f})", fontsize=9)
        ax.set_xticks(range(len(runs)), runs, rotation=90, fontsize=7)
        ax.set_yticks(range(len(runs)), runs if ax is axes[0][0] else [], fontsize=7)
    figure.colorbar(image, ax=axes[0].tolist(), label="mask Jaccard")
    figure.suptitle(f"mask overlap between runs at level {level}")
    save_figure(figure, output)
