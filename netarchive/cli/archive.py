"""Commands that fill and manage the archive: ingest, ls, rm, check, export."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import click

import netarchive
from netarchive.cli import EXIT_ERROR, cli
from netarchive.cli.common import Settings, open_archive, parse_input_shape, parse_pairs, run_selection_options, selected_runs
from netarchive.cli.output import emit, output_options
from netarchive.errors import InputError, NotFound
from netarchive.model import ACTIVATIONS
from netarchive.store import resolve_location


@contextmanager
def progress_line(description: str):
    """A spinner with the current step of a long job on stderr (nothing when stderr is not a terminal)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda step: None
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(description)
        yield lambda step: bar.update(task, description=f"{description}: {step}")


def _metrics(path: str | None) -> dict:
    if path is None:
        return {}
    try:
        values = json.loads(Path(path).read_text())
    except ValueError as error:
        raise InputError(f"--metrics {path}: not valid JSON ({error})") from None
    if not isinstance(values, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values()):
        raise InputError(f"--metrics {path}: expected a JSON object of numbers, e.g. {{\"accuracy\": 0.97}}")
    return values


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--run", help="Name of the run the checkpoints belong to (OpenLTH trees: the prefix of their runs; "
              "default: from the experiment's hash).")
@click.option("--level", type=int, help="Pruning level of a single checkpoint file (default: from the file name).")
@click.option("--replace", is_flag=True, help="Overwrite levels of the run that are already archived.")
@click.option("--mask", type=click.Path(), help="A separate mask file (same keys as the weights, 0/1).")
@click.option("--model", "model_spec", metavar="SPEC",
              help="The architecture: package.module:factory or path/to/file.py:factory, a callable returning the "
                   "nn.Module (traced; default: the Linear weights read as a chain, architecture assumed sequential).")
@click.option("--layers", help="Comma-separated weight names, in forward order (default: state_dict order).")
@click.option("--input-shape", help="C,H,W (or C,L) of one input sample: needed to trace convolutions; "
                                    "gives MLP inputs pixel coordinates (e.g. 1,28,28).")
@click.option("--metrics", "metrics_file", type=click.Path(), help="JSON object of numbers (accuracy, loss, ...).")
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="A label of the run (seed, dataset, ...).")
@click.option("--which", type=click.Choice(["end", "start"]), default="end", show_default=True,
              help="OpenLTH: the weights at the end of each level's training, or at its start (the rewinding point).")
@click.option("--activation", type=click.Choice(ACTIVATIONS), default="relu", show_default=True,
              help="Nonlinearity between hidden layers, for forward passes (`eval`).")
@output_options
def ingest(paths, run, level, replace, model_spec, mask, layers, input_shape, metrics_file, meta, which, activation, fmt,
           output):
    """Archive checkpoint files as run RUN, or the runs of an OpenLTH experiment tree.

    PATHS are .pt/.pth state_dicts (torch.nn.utils.prune checkpoints included), .safetensors or .npz files,
    directories of them, or any directory of an OpenLTH tree: lottery_<hash> (each replicate_<N> becomes
    run RUN-r<N>), replicate_<N>, level_<L>, level_<L>/main or a lottery_branch_* directory (branches are
    runs of their own), with the labels of hparams.log and the logger's curves. With --model each one's
    weights are loaded into the traced architecture of SPEC (e.g. --model
    netarchive.zoo.openlth:cifar_resnet_20 --input-shape 3,32,32).
    """
    options = dict(
        model=model_spec,
        mask=mask,
        layers=[name.strip() for name in layers.split(",")] if layers else None,
        input_shape=parse_input_shape(input_shape),
        metrics=_metrics(metrics_file),
        meta=parse_pairs(meta, '--meta'),
        which=which,
        activation=activation,
    )
    with open_archive(read_only=False) as archive, progress_line(f"ingesting {run or ', '.join(paths)}") as step:
        summary = archive.ingest(paths, run, level=level, replace=replace, progress=step, **options)
    emit(summary, fmt, output, title=f"archived in {archive.location}")


@cli.command("ls")
@click.option("--run", help="Only this run.")
@run_selection_options("Only these runs: names or globs, comma-separated ('seed*').")
@click.option("--meta", "labels", is_flag=True, help="Add the labels of each run (hparams, --meta) as columns.")
@output_options
def ls(run, runs_text, where, labels, fmt, output):
    """List the archived checkpoints: run, level, layers, neurons, edges, sparsity, architecture source,
    metrics[, labels]."""
    with open_archive() as archive:
        listing = archive.checkpoints()
        if run is not None or runs_text is not None or where:
            listing = listing[listing["run"].isin(selected_runs(archive, run, runs_text, where=where))]
        if labels:
            listing = archive.with_labels(listing)
        unfinished = archive.unfinished()
    emit(listing.reset_index(drop=True), fmt, output, title=f"archive: {archive.location}")
    if len(unfinished):
        names = ", ".join(f"{row.run}/{row.level}" for row in unfinished.itertuples())
        click.echo(f"note: {len(unfinished)} unfinished checkpoint(s) hidden ({names}), left by an interrupted write: "
                   "the next write or `netarchive check --repair` removes them", err=True)


@cli.command()
@click.option("--run", required=True, help="The run to delete from.")
@click.option("--level", type=int, help="Only this level (default: the whole run).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def rm(run, level, yes):
    """Delete a checkpoint, or a whole run, from the archive."""
    what = f"level {level} of run {run!r}" if level is not None else f"every checkpoint of run {run!r}"
    with open_archive(read_only=False) as archive:
        levels = archive.levels(run)  # an unknown run or level is said before asking
        if level is not None and level not in levels:
            raise NotFound.checkpoint(run, level, archive.location, levels)
        if not yes:
            click.confirm(f"Delete {what} from {archive.location}?", abort=True, err=True)
        with progress_line("deleting"):
            removed = archive.rm(run, level)
    click.echo(f"removed {removed} checkpoint(s) of run {run!r}")


@cli.command()
@click.option("--repair", is_flag=True,
              help="Remove incomplete or damaged checkpoints (named, to ingest again) and mend what else can be mended.")
@output_options
@click.pass_context
def check(ctx, repair, fmt, output):
    """Verify the whole archive: every checkpoint complete and matching its counts, no rows of no checkpoint,
    schema and version records, cached analyses. One row per problem; exit status 1 while any is left."""
    settings: Settings = ctx.find_object(Settings)
    server = {"user": settings.user, "password": settings.password, "database": settings.database}
    with progress_line("repairing" if repair else "checking"):
        problems = netarchive.check(settings.store, repair=repair, **server)
    location = resolve_location(settings.store)
    if problems.empty and (fmt or "table") == "table" and output is None:
        click.echo(f"the archive at {location} is sound")
    else:
        emit(problems, fmt, output, title=f"check of {location}")
    left = int((~problems["repaired"]).sum()) if len(problems) else 0
    if left:
        advice = "" if repair else ": `netarchive check --repair` mends what it can"
        click.echo(f"error: {left} problem(s) in the archive at {location}{advice}", err=True)
        ctx.exit(EXIT_ERROR)


@cli.command("set-activation")
@click.argument("activation", type=click.Choice(ACTIVATIONS))
@click.option("--run", required=True, help="The run whose activation to record.")
def set_activation(activation, run):
    """Record the nonlinearity between the hidden layers of a run (default at ingest: relu)."""
    with open_archive(read_only=False) as archive:
        archive.set_activation(run, activation)
    click.echo(f"run {run!r}: activation {activation}")


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--run", help="Only this run (default: the whole archive).")
@click.option("--neo4j-import", "neo4j_import", is_flag=True,
              help="Write CSV files for `neo4j-admin database import full` instead, and print that command.")
@click.option("--analyses", is_flag=True, help="Also write every analysis's table under DIRECTORY/analyses/<name>.")
def export(directory, run, neo4j_import, analyses):
    """Write the archive as Parquet for pandas: DIRECTORY/edges, DIRECTORY/neurons, DIRECTORY/checkpoints.parquet."""
    if neo4j_import:
        from netarchive.neo4j_import import export_neo4j_import, import_command

        with open_archive() as archive, progress_line("exporting") as step:
            listing = export_neo4j_import(archive, directory, run=run, progress=step)
        click.echo(f"exported {len(listing)} checkpoint(s) to {directory}; with the server stopped, load them with")
        click.echo(f"  {import_command(Path(directory).resolve())}")
        click.echo("(docker/compose.yml mounts docker/import as /import: export to docker/import/NAME, then")
        click.echo(f"  docker compose -f docker/compose.yml stop neo4j && docker compose -f docker/compose.yml run --rm neo4j "
                   f"{import_command('/import/' + Path(directory).name)})")
        click.echo("then start it and run `netarchive --store neo4j://HOST:7687 init` (constraints and indexes).")
        return
    with open_archive() as archive, progress_line("exporting") as step:
        listing = archive.export(directory, run=run, progress=step, analyses=analyses)
    if listing.empty:
        click.echo(f"nothing to export: the archive at {archive.location} is empty")
        return
    click.echo(f"exported {len(listing)} checkpoint(s) to {directory}  (pandas.read_parquet({str(Path(directory) / 'edges')!r}))")
