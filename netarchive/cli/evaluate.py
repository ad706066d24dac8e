"""``netarchive eval``, ``query robustness`` and ``plot robustness``: function beside structure."""
from __future__ import annotations

import click
import numpy as np

from netarchive.analysis.forward import evaluate
from netarchive.analysis.percolation import ORDERS, RANDOM_ORDERS, thresholds
from netarchive.analysis.robustness import robustness
from netarchive.cli import cli
from netarchive.cli.common import checkpoint_options, each_checkpoint, open_archive
from netarchive.cli.output import emit, output_options
from netarchive.cli.percolation import THRESHOLD_MARKS, mark_threshold
from netarchive.cli.plot import new_figure, output_file_option, plot, save_figure
from netarchive.cli.query import query
from netarchive.loaders.datasets import load_dataset

SCORES = ("accuracy", "loss", "mse")


@cli.command("eval")
@checkpoint_options
@click.option("--data", required=True, type=click.Path(), help=".npz with arrays x, y (or .pt with tensors x, y).")
@click.option("--store-metrics", is_flag=True, help="Save the scores as metrics of each checkpoint.")
@output_options
def eval_command(run, level, data, store_metrics, fmt, output):
    """Evaluate checkpoints of a run on a dataset: accuracy and loss (class labels) or MSE (float targets)."""
    x, y = load_dataset(data)
    with open_archive(read_only=not store_metrics) as archive:
        table = evaluate(list(each_checkpoint(archive, run, level)), x, y)
        if store_metrics:
            for row in table.to_dict("records"):
                archive.set_metrics(row["run"], row["level"], {k: row[k] for k in SCORES if k in row})
    for row in table[table.biases != "stored"].itertuples():
        click.echo(f"note: level {row.level} of {row.run!r} was archived without biases; zeros were used", err=True)
    emit(table, fmt, output)


def _robustness_options(command):
    for decorator in reversed([
        click.option("--run", required=True, help="Name of the archived run."),
        click.option("--level", type=int, required=True, help="Level of the run."),
        click.option("--data", required=True, type=click.Path(), help=".npz with arrays x, y (or .pt with tensors x, y)."),
        click.option("--samples", type=int, default=RANDOM_ORDERS, show_default=True,
                     help="Random orderings averaged (random-order curves and the measured threshold)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random orderings."),
    ]):
        command = decorator(command)
    return command


@query.command("robustness")
@_robustness_options
@click.option("--order", type=click.Choice(ORDERS), default="descending", show_default=True,
              help="Which synapses are kept first: strongest |w|, weakest, or random (Bernoulli).")
@click.option("--points", type=int, default=21, show_default=True, help="Evenly spaced kept fractions, 0 to 1.")
@output_options
def robustness_command(run, level, data, samples, seed, order, points, fmt, output):
    """Accuracy (or MSE) beside the giant component as synapses are removed, at the points of `percolation`."""
    x, y = load_dataset(data)
    with open_archive() as archive:
        checkpoint = archive.checkpoint(run, level)
    emit(robustness(checkpoint, x, y, order, points, samples, seed), fmt, output)


@plot.command("robustness")
@_robustness_options
@output_file_option
def plot_robustness(run, level, data, samples, seed, output):
    """Accuracy and giant fraction against kept fraction, descending and random orders, thresholds marked."""
    x, y = load_dataset(data)
    with open_archive() as archive:
        checkpoint = archive.checkpoint(run, level)
        marks = archive.analyze(thresholds, run, level, samples=samples, seed=seed).iloc[0]  # = query threshold
    kept = np.concatenate([[0.0], np.geomspace(1 / max(checkpoint.edges, 1), 1, 40)])
    score = "accuracy" if np.issubdtype(y.dtype, np.integer) else "mse"
    figure, axis = new_figure(figsize=(8, 5))
    for i, order in enumerate(("descending", "random")):
        curve = robustness(checkpoint, x, y, order, samples=samples, seed=seed, kept=kept)[1:]
        axis.plot(curve.kept, curve.giant_fraction, "-", color=f"C{i}", label=f"giant fraction, {order}")
        axis.plot(curve.kept, curve[score], "--", color=f"C{i}", marker=".", label=f"{score}, {order}")
    for j, (column, (name, _)) in enumerate(THRESHOLD_MARKS.items()):
        if np.isfinite(marks[column]):
            mark_threshold(axis, j, name, marks[column])
    axis.set_xscale("log")
    axis.set_xlabel("kept fraction of the checkpoint's synapses")
    axis.set_ylabel(f"giant component / neurons, {score}")
    axis.set_title(f"structure and function: {run} level {level} (sparsity {checkpoint.sparsity:.3f})")
    axis.legend(fontsize="small", loc="upper left")
    save_figure(figure, output)
