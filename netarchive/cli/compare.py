"""``netarchive query compare`` (masks across runs) and ``query survival`` (across the levels of a run)."""
from __future__ import annotations

import click
import pandas as pd

from netarchive.analysis.compare import compare_runs, survival
from netarchive.cli.common import each_checkpoint, open_archive
from netarchive.cli.output import emit, output_options
from netarchive.cli.query import query
from netarchive.errors import InputError


def split_runs(text: str) -> list[str]:
    runs = [run.strip() for run in text.split(",") if run.strip()]
    if not runs:
        raise InputError("--runs takes comma-separated run names, e.g. --runs seed0,seed1")
    return runs


@query.command("compare")
@click.option("--runs", "runs_text", required=True, help="Comma-separated runs of one architecture.")
@click.option("--level", type=int, help="The level to compare (default: the last level all runs have).")
@click.option("--levels", "all_levels", is_flag=True, help="Compare at every level the runs have in common.")
@output_options
def compare(runs_text, level, all_levels, fmt, output):
    """Mask Jaccard (and its chance level), weight and degree correlations between every pair of runs."""
    runs = split_runs(runs_text)
    with open_archive() as archive:
        common = sorted(set.intersection(*(set(archive.levels(run)) for run in runs)))
        if not common:
            raise InputError(f"the runs {', '.join(runs)} have no level in common")
        if level is not None and level not in common:
            raise InputError(f"level {level} is not archived for every run (common levels: {', '.join(map(str, common))})")
        levels = common if all_levels else [level if level is not None else common[-1]]
        tables = [compare_runs([archive.checkpoint(run, each) for run in runs]) for each in levels]
    emit(pd.concat(tables, ignore_index=True), fmt, output)


@query.command("survival")
@click.option("--run", required=True, help="Name of the archived run.")
@output_options
def survival_command(run, fmt, output):
    """Synapses kept from each level to the next, and whether the survivors were the strongest."""
    with open_archive() as archive:
        levels = list(each_checkpoint(archive, run, None))
    if len(levels) < 2:
        raise InputError(f"run {run!r} has one level: survival needs at least two")
    emit(survival(levels), fmt, output)
