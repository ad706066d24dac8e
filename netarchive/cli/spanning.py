"""Spanning forests: ``query persistence|tccr|overlap``, ``prune`` and ``plot persistence`` (docs/spanning.md)."""
from __future__ import annotations

import click
import numpy as np
import pandas as pd

from netarchive.analysis import spanning
from netarchive.analysis.persistence import NORMALIZATIONS, neural_persistence, persistence_diagram
from netarchive.cli import cli
from netarchive.cli.common import analysis_table, checkpoint_options, each_checkpoint, open_archive
from netarchive.cli.output import emit, output_options
from netarchive.cli.plot import layer_label, new_figure, output_file_option, plot, save_figure
from netarchive.cli.query import query
from netarchive.errors import InputError
from netarchive.model import Checkpoint

FLAG = "in_msf"


def _normalize_option(command):
    return click.option(
        "--normalize", type=click.Choice(NORMALIZATIONS), default="global", show_default=True,
        help="Divide |w| by the largest |w| of the whole network (reference convention) or of each layer.",
    )(command)


def _unroll_option(command):
    return click.option(
        "--unroll", is_flag=True,
        help="Convolutions as their unrolled (channel, y, x) units instead of the channel graph (one edge per kernel weight).",
    )(command)


@query.command("persistence")
@checkpoint_options
@_normalize_option
@_unroll_option
@click.option("--p", "p", type=float, default=2.0, show_default=True, help="Order of the norm of the diagram.")
@click.option("--write", is_flag=True, help=f"Mark the forest on the graph: SYNAPSE.{FLAG} = true (false elsewhere).")
@output_options
def persistence(run, level, normalize, unroll, p, write, fmt, output):
    """Neural persistence of each weight layer (Rieck et al. 2019) and of the network.

    Columns: scope (layer | network), layer (forward index), layer_name (tensor name), kind, graph (neurons |
    channels | unrolled), inputs, outputs, edges, components, msf_edges, np, np_normalized; the network row has
    np_total (sum) and np_normalized_mean (mean over layers).
    """
    frames = []
    with open_archive(read_only=not write) as archive:
        for checkpoint in each_checkpoint(archive, run, level):
            forests = spanning.spanning_forests(checkpoint, unroll=unroll)
            frames.append(neural_persistence(checkpoint, p=p, normalize=normalize, forests=forests, unroll=unroll))
            if write:
                _write_forest(archive, checkpoint, forests)
    table = pd.concat(frames, ignore_index=True)
    emit(table, fmt, output, title=frames[0].attrs["convention"])


def _write_forest(archive, checkpoint, forests) -> None:
    which, src, dst, ky, kx = spanning.forest_synapses(checkpoint, forests)
    archive.set_synapse_flag(checkpoint.run, checkpoint.level, FLAG, which, src, dst, ky, kx)


@query.command("tccr")
@checkpoint_options
@click.option("--convention", type=click.Choice(spanning.CONVENTIONS), default="geometry", show_default=True,
              help="geometry: each layer's real unrolled graph; seed: seed 002's tables (one Toeplitz graph per "
                   "convolution at its output size, 1×1 projection shortcuts left out).")
@output_options
def tccr(run, level, convention, fmt, output):
    """Topologically critical compression ratio per weight layer and network (Balwani & Krzyston 2022).

    tccr = dense_edges / tree_edges of the layer's dense graph (m·n/(m+n−1) for a Linear layer),
    ΣE / Σtree for the network; compression is the checkpoint's (dense weights / surviving);
    past_critical: compressed beyond the critical ratio.
    """
    with open_archive() as archive:
        table = analysis_table(archive, run, level, spanning.tccr, convention=convention)
    emit(table, fmt, output, title=spanning.TCCR_CONVENTIONS[convention])


@query.command("overlap")
@checkpoint_options
@click.option("--from-level", type=int, default=None,
              help="Instead: how much of this level's forest survives at each later level (or at --level).")
@output_options
def overlap(run, level, from_level, fmt, output):
    """Overlap of each layer's maximum spanning forest with its top-k synapses by |w| (k = forest size).

    Columns: msf_edges, overlap, overlap_fraction and, for k synapses chosen at random, the exact
    expectation random_overlap (± random_overlap_std) and random_overlap_fraction. With --from-level A:
    survived / still_in_forest (fractions of A's forest) against random_survived_fraction.
    """
    with open_archive() as archive:
        if from_level is None:
            frames = [analysis_table(archive, run, level, spanning.overlap)]
        else:
            if level is not None and level <= from_level:
                raise InputError(f"--level {level} must be a later level than --from-level {from_level}")
            reference = archive.checkpoint(run, from_level)
            forests = spanning.spanning_forests(reference)
            later = [level] if level is not None else [l for l in archive.levels(run) if l > from_level]
            if not later:
                raise InputError(f"run {run!r} has no level after {from_level}")
            frames = [
                spanning.forest_survival(reference, archive.checkpoint(run, each), forests) for each in later
            ]
    emit(pd.concat(frames, ignore_index=True), fmt, output)


@cli.command("prune")
@click.option("--run", required=True, help="Name of the archived run.")
@click.option("--level", type=int, required=True, help="Level whose weights are ranked.")
@click.option("--sparsity", type=float, required=True, help="Fraction of the dense weights to prune, in [0, 1).")
@click.option("--method", type=click.Choice(spanning.METHODS), default="topological", show_default=True,
              help="magnitude: largest |w|; topological: each layer's maximum spanning forest, then largest |w|.")
@click.option("--scope", type=click.Choice(spanning.SCOPES), default="layer", show_default=True,
              help="Prune every layer to the sparsity, or rank all weights together.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Torch file of masks to write.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default=None, help="Format of the summary.")
def prune(run, level, sparsity, method, scope, output, fmt):
    """Write pruning masks {"<weight name>_mask": tensor} for torch.nn.utils.prune.custom_from_mask.

    Example: netarchive prune --run r --level 3 --sparsity 0.9 -o masks.pt, then in Python
    prune.custom_from_mask(model.fc1, "weight", torch.load("masks.pt", weights_only=True)["fc1.weight_mask"]).
    """
    import torch

    with open_archive() as archive:
        checkpoint = archive.checkpoint(run, level)
    masks, summary = spanning.pruning_masks(checkpoint, sparsity, method=method, scope=scope)
    with open(output, "wb") as file:  # an OSError (no such directory) is a one-line error; torch's is not
        torch.save({f"{name}_mask": torch.from_numpy(mask.astype(np.float32)) for name, mask in masks.items()}, file)
    emit(summary, fmt, None, title=f"masks written to {output}")


@plot.command("persistence")
@click.option("--run", required=True, help="Name of the archived run.")
@click.option("--layer", default=None, help="Draw the persistence diagram of this weight layer (tensor name or forward index) instead.")
@click.option("--level", type=int, default=None, help="Level of the diagram (default: the last level).")
@_normalize_option
@_unroll_option
@output_file_option
def plot_persistence(run, layer, level, normalize, unroll, output):
    """Normalised neural persistence of each weight layer against sparsity over the levels of a run, or
    (with --layer) the persistence diagram of one layer."""
    with open_archive() as archive:
        if layer is not None:
            checkpoint = archive.checkpoint(run, level if level is not None else archive.levels(run)[-1])
            index = checkpoint.layer_index(layer)
            diagram = persistence_diagram(checkpoint, index, normalize=normalize, unroll=unroll)
            draw_diagram(diagram, output, layer_label(checkpoint.layers[index], index))
            return
        if level is not None:
            raise InputError("--level only applies to the diagram of one layer: add --layer")
        draw_curves(list(each_checkpoint(archive, run, None)), output, normalize=normalize, unroll=unroll)


def draw_curves(checkpoints: list[Checkpoint], output: str, normalize: str = "global", unroll: bool = False) -> None:
    """Normalised NP of every weight layer of ``checkpoints`` (the levels of one run) against their sparsity."""
    tables = []
    for checkpoint in checkpoints:
        table = neural_persistence(checkpoint, normalize=normalize, unroll=unroll)
        table["sparsity"] = checkpoint.sparsity
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    first = checkpoints[0]
    count = len(first.layers)
    figure, axes = new_figure(figsize=(8, 4.5) if count <= 8 else (11, max(4.5, 0.2 * count + 1)))
    colours = _layer_colours(count)
    layers = table[table["scope"] == "layer"]
    for (index, rows), colour in zip(layers.groupby("layer", sort=True), colours):
        axes.plot(rows["sparsity"], rows["np_normalized"], marker="o", ms=3, lw=1.2, color=colour,
                  label=layer_label(first.layers[int(index)], int(index), shape=True))
    network = table[table["scope"] == "network"]
    axes.plot(network["sparsity"], network["np_normalized_mean"], "k--", marker="s", label="mean over layers")
    axes.set_xlabel("sparsity of the checkpoint")
    axes.set_ylabel("normalised neural persistence")
    kernels = " (convolutions unrolled)" if unroll and any(l.conv is not None for l in first.layers) else ""
    axes.set_title(f"run {first.run}: neural persistence per weight layer{kernels}")
    axes.legend(fontsize="x-small" if count > 8 else "small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                ncol=2 if count > 30 else 1, frameon=False)
    save_figure(figure, output)


def _layer_colours(count: int) -> list:
    """Distinct colours for a few layers; a sequential map (shallow to deep) for many."""
    import matplotlib

    if count <= 10:
        return [f"C{i}" for i in range(count)]
    return [matplotlib.colormaps["viridis"](i / (count - 1)) for i in range(count)]


def draw_diagram(diagram: pd.DataFrame, output: str, label: str) -> None:
    """The persistence diagram of one layer (:func:`persistence_diagram`) and the histogram of its
    persistences; ``label`` names the layer (:func:`~netarchive.cli.plot.layer_label`)."""
    figure, (left, right) = new_figure(1, 2, figsize=(9, 4))
    forest = diagram[diagram["src"].notna()]
    left.scatter(forest["birth"], forest["death"], s=8, alpha=0.5, label=f"forest edges ({len(forest)})")
    components = len(diagram) - len(forest)
    left.scatter([1.0], [0.0], s=40, marker="x", color="red", label=f"(1, 0) × {components} components")
    left.plot([0, 1], [0, 1], color="grey", lw=0.8)
    left.set_xlim(0, 1.05), left.set_ylim(-0.05, 1.05)
    left.set_xlabel("birth"), left.set_ylabel("death (normalised |w|)")
    left.legend(fontsize="small", loc="upper left")
    right.hist(diagram["persistence"], bins=40)
    right.set_xlabel("persistence = 1 − death"), right.set_ylabel("points")
    row = diagram.iloc[0]
    graph = {"neurons": "", "channels": ", channel graph", "unrolled": ", unrolled"}[row["graph"]]
    figure.suptitle(f"persistence diagram of {label}{graph}: {row['run']}, level {row['level']}")
    save_figure(figure, output)
