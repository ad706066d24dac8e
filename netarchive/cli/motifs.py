"""``netarchive query motifs`` and ``netarchive plot motifs``: motif counts and z-scores across runs."""
from __future__ import annotations

import click
import numpy as np

from netarchive.analysis import motifs as analysis
from netarchive.cli.common import open_archive, run_selection_options, selected_runs
from netarchive.cli.output import emit, output_options
from netarchive.cli.plot import (
    COLUMN, PAGE, new_figure, output_file_option, plot, remaining, remaining_axis, save_figure,
)
from netarchive.cli.query import query
from netarchive.errors import InputError


def _runs(archive, run: str | None, runs: str | None, where) -> list[str]:
    if run is None and runs is None and not where:
        raise InputError("give --run R, --runs R1,R2,... or 'seed*', or --where LABEL=VALUE (the runs to count motifs in)")
    return selected_runs(archive, run, runs, where=where)


def _checkpoints(archive, runs: list[str], level: int | None):
    """Every checkpoint of the runs (or level ``level`` of each), read before any counting."""
    out = []
    for name in runs:
        levels = [level] if level is not None else archive.levels(name)
        out.extend(archive.checkpoint(name, each) for each in levels)
    return out


def motif_options(command):
    """The options shared by the table and the plots."""
    for option in reversed([
        click.option("--run", help="A run of the archive."),
        run_selection_options("Runs: names or globs, comma-separated ('seed*', all; with or instead of --run)."),
        click.option("--level", type=int, default=None, help="Only this level of each run (default: every level)."),
        click.option("--null", "null", type=click.Choice(analysis.NULLS), default="fixed", show_default=True,
                     help="fixed / bernoulli: exact closed form; degree (curveball) / study (the study's own "
                          "procedure, on the live neurons: implies --prune-dead): sampled."),
        click.option("--signed", is_flag=True, help="Split every count by the signs of its synapses."),
        click.option("--chain-pairs", is_flag=True,
                     help="Count chain and chain3 as connected (source, end) pairs, nnz(M2·M1) and nnz(M3·M2·M1), "
                          "as the study's code."),
        click.option("--prune-dead", is_flag=True, help="First remove neurons without inputs or outputs, iteratively."),
        click.option("--samples", type=int, default=1000, show_default=True, help="Draws of a sampled null."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of a sampled null."),
        click.option("--sample", is_flag=True, help="Sample an exact null too (to check the closed form)."),
        click.option("--motif", "motif_names", multiple=True, type=click.Choice(analysis.MOTIFS),
                     help="Only this motif (repeatable; default: all)."),
    ]):
        command = option(command)
    return command


def _count(checkpoints, null, signed, chain_pairs, prune_dead, samples, seed, sample, motif_names):
    return analysis.motifs(
        checkpoints, null=null, signed=signed, chain_pairs=chain_pairs, prune_dead=prune_dead,
        samples=samples, seed=seed, sample=sample, motifs=tuple(motif_names) or analysis.MOTIFS,
    )


@query.command("motifs")
@motif_options
@click.option("--totals", is_flag=True, help="Only the whole-network rows (layer = all).")
@click.option("--write", is_flag=True,
              help="Store per-neuron participation on the graph: Neuron.fan_in_pairs, fan_out_pairs, chains_through.")
@output_options
def motifs_command(run, runs_text, where, level, null, signed, chain_pairs, prune_dead, samples, seed, sample, motif_names,
                   totals, write, fmt, output):
    """Motif counts with their expected value, SD and z-score under a null model.

    One row per run, level, layer (or span "l-k", or "all"), motif (and sign with --signed). The
    `method` column says whether expected/sd are exact (closed form) or sampled (`samples` draws).

    Example: netarchive query motifs --runs seed0,seed1 --level 10 --totals
    """
    with open_archive(read_only=not write) as archive:
        checkpoints = _checkpoints(archive, _runs(archive, run, runs_text, where), level)
        frame = _count(checkpoints, null, signed, chain_pairs, prune_dead, samples, seed, sample, motif_names)
        if write:
            for checkpoint in checkpoints:
                part = analysis.participation(checkpoint, prune_dead=prune_dead)
                archive.set_neuron_properties(checkpoint.run, checkpoint.level, {
                    name: part[name].to_numpy() for name in ("fan_in_pairs", "fan_out_pairs", "chains_through")
                })
    if totals:
        frame = frame[frame["layer"] == "all"].reset_index(drop=True)
    emit(frame, fmt, output)
    if write:
        click.echo(f"wrote fan_in_pairs, fan_out_pairs, chains_through on the neurons of {len(checkpoints)} checkpoint(s)", err=True)


@plot.command("motifs")
@motif_options
@click.option("--over-sparsity", is_flag=True, help="z against sparsity per motif (every level), instead of distributions.")
@output_file_option
def plot_motifs(run, runs_text, where, level, null, signed, chain_pairs, prune_dead, samples, seed, sample, motif_names,
                over_sparsity, output):
    """Whole-network motif z-scores across runs: distributions per motif at one level (the study's
    Fig. 2), or with --over-sparsity z against sparsity per motif (its Fig. 3)."""
    if not over_sparsity and level is None:
        raise InputError("give --level N for the distributions across runs (or --over-sparsity for every level)")
    with open_archive() as archive:
        checkpoints = _checkpoints(archive, _runs(archive, run, runs_text, where), level)
    frame = _count(checkpoints, null, signed, chain_pairs, prune_dead, samples, seed, sample, motif_names)
    frame = frame[(frame["layer"] == "all") & np.isfinite(frame["z"])]
    frame = frame.assign(name=frame["motif"] + (" " + frame["sign"] if signed else ""))
    names = [name for name in dict.fromkeys(frame["name"])]
    if not names:
        raise InputError("no motif has a finite z-score here (an exact null fixes edge counts; try --null bernoulli)")
    runs = frame["run"].nunique()
    about = f"{null} null, {runs} run{'s' if runs > 1 else ''}"
    if frame["method"].str.contains("edge cover").any():
        about += "; some layers: edge-cover fallback"
    if over_sparsity:
        _draw_over_sparsity(frame, names, about, output)
    else:
        _draw_distributions(frame, names, about, level, output)


def _draw_over_sparsity(frame, names, about, output):
    """One panel per motif: z of every checkpoint against its sparsity, and the median over runs per level."""
    from matplotlib.lines import Line2D

    cols = 2 if len(names) in (2, 4) else min(3, len(names))
    rows = -(-len(names) // cols)
    figure, axes = new_figure(rows, cols, figsize=(COLUMN if cols == 1 else PAGE, 0.4 + 1.55 * rows),
                              squeeze=False, sharex=True)
    for ax, name in zip(axes.flat, names):
        part = frame[frame["name"] == name]
        ax.scatter(remaining(part["sparsity"]), part["z"], s=5, alpha=0.5, color="C0", linewidths=0)
        median = part.groupby("level").agg(sparsity=("sparsity", "median"), z=("z", "median")).sort_values("sparsity")
        ax.plot(remaining(median["sparsity"]), median["z"], color="black", lw=1)
        ax.axhline(0, color="0.6", lw=0.6, ls=":")
        ax.set_title(name, pad=2)
        remaining_axis(ax)
        ax.set_xlabel("")
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    for column in range(cols):  # the lowest panel of each column says what x is
        lowest = max(k for k in range(len(names)) if k % cols == column)
        axes.flat[lowest].set_xlabel("weights remaining (%)")
        axes.flat[lowest].xaxis.set_tick_params(labelbottom=True)
    for row in axes:
        row[0].set_ylabel("z-score (SDs from\nthe null mean)")
    figure.suptitle(f"Motif z-scores over the pruning levels ({about})")
    figure.legend(handles=[
        Line2D([], [], color="C0", marker="o", linestyle="", markersize=3, label="one checkpoint (run, level)"),
        Line2D([], [], color="black", lw=1, label="median over runs, per level"),
        Line2D([], [], color="0.6", lw=0.6, ls=":", label="z = 0 (as the null)"),
    ], loc="outside lower center", ncol=3)
    save_figure(figure, output)


def _draw_distributions(frame, names, about, level, output):
    """The distribution of each motif's z over the runs at one level: box (quartiles) and one dot per run."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    figure, ax = new_figure(figsize=(min(PAGE, max(COLUMN, 0.42 * len(names) + 1.2)), 3.0))
    data = [frame.loc[frame["name"] == name, "z"].to_numpy() for name in names]
    ax.boxplot(data, showfliers=False, widths=0.6, medianprops={"color": "black"})
    for k, values in enumerate(data, start=1):
        jitter = np.random.default_rng(k).uniform(-0.15, 0.15, len(values))
        ax.scatter(np.full(len(values), k) + jitter, values, s=5, alpha=0.6, color="C0", linewidths=0, zorder=3)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=45, ha="right")
    ax.axhline(0, color="0.6", lw=0.6, ls=":")
    ax.set_ylabel("z-score (SDs from the null mean)")
    ax.set_title(f"Motif z-scores at level {level} ({about})")
    figure.legend(handles=[
        Patch(facecolor="none", edgecolor="black", label="quartiles, whiskers to 1.5 IQR"),
        Line2D([], [], color="C0", marker="o", linestyle="", markersize=3, label="one run"),
    ], loc="outside lower center", ncol=2)
    save_figure(figure, output)
