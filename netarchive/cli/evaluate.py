"""``netarchive eval``: run archived networks on a dataset (function beside structure)."""
from __future__ import annotations

import click

from netarchive.analysis.forward import evaluate
from netarchive.cli import cli
from netarchive.cli.common import checkpoint_options, each_checkpoint, open_archive
from netarchive.cli.output import emit, output_options
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
