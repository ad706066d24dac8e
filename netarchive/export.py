"""Parquet export for pandas: one dataset of synapses and one of neurons, one file per checkpoint.

Layout (every file holds its own ``run`` and ``level`` columns)::

    DIR/edges/<run>/level_<level>.parquet           run, level, layer, src, dst, w
    DIR/neurons/<run>/level_<level>.parquet         run, level, layer, index, channel, y, x
    DIR/curves/<run>/level_<level>.parquet          run, level, metric, iteration, value (training curves, where logged)
    DIR/checkpoints.parquet                         the `netarchive ls` listing
    DIR/analyses/<name>/<run>/level_<level>.parquet with --analyses: each analysis's tidy table

Why not hive folders (``run=<run>/level=<level>``): ``pandas.read_parquet`` reads hive keys back as
categoricals in text order (levels 0, 1, 10, 11, 2, …), so sorting and grouping by level go wrong. With the
columns in the files, ``pandas.read_parquet(DIR + "/edges")`` gives ``run`` as text and ``level`` as an
integer, and ``filters=[("run", "==", "seed0")]`` works as before. Run names are
percent-encoded in folder names. Exporting a checkpoint again replaces its files; other checkpoints in DIR
are kept.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from netarchive.analysis.components import components
from netarchive.analysis.degrees import degrees
from netarchive.analysis.locality import unit_locality
from netarchive.analysis.motifs import motifs
from netarchive.analysis.percolation import ORDERS, percolation, thresholds
from netarchive.analysis.persistence import neural_persistence
from netarchive.analysis.spanning import overlap, tccr
from netarchive.errors import InputError
from netarchive.model import Checkpoint
from netarchive.store.base import curve_properties

EDGE_SCHEMA = pa.schema([("layer", pa.int16()), ("src", pa.int32()), ("dst", pa.int32()), ("w", pa.float32())])


def edge_table(checkpoint: Checkpoint) -> pa.Table:
    """The synapses of a checkpoint: ``layer`` (the weight layer, its forward index), ``src``, ``dst`` (indices
    within its source and target groups) and ``w``."""
    layer = np.repeat(np.arange(len(checkpoint.layers), dtype=np.int16), [l.edges for l in checkpoint.layers])
    return pa.table(
        [
            layer,
            np.concatenate([l.src for l in checkpoint.layers]),
            np.concatenate([l.dst for l in checkpoint.layers]),
            np.concatenate([l.w for l in checkpoint.layers]),
        ],
        schema=EDGE_SCHEMA,
    )


def neuron_table(checkpoint: Checkpoint) -> pa.Table:
    """The neurons of a checkpoint: ``layer``, ``index`` and ``channel``, ``y``, ``x`` (the pixel of an input
    neuron; null elsewhere and when the inputs are not pixels, so that every checkpoint has one schema)."""
    layer = checkpoint.neuron_layers()
    columns = {"layer": layer.astype(np.int16), "index": (np.arange(checkpoint.neurons) - checkpoint.offsets[layer]).astype(np.int32)}
    coordinates = checkpoint.input_coordinates()
    inputs = checkpoint.widths[0] if coordinates is not None else 0
    for k, name in enumerate(("channel", "y", "x")):
        full = np.zeros(checkpoint.neurons, dtype=np.int32)
        if coordinates is not None:
            full[:inputs] = coordinates[k]
        columns[name] = pa.array(full, mask=np.arange(checkpoint.neurons) >= inputs)
    return pa.table(columns)


def curve_table(checkpoint: Checkpoint) -> pa.Table | None:
    """The training curves of a checkpoint as ``metric, iteration, value`` rows (None without curves)."""
    curves = curve_properties(checkpoint)
    if not curves:
        return None
    return pa.table({
        "metric": pa.array(curves["curve_metric"], pa.string()),
        "iteration": pa.array(curves["curve_iteration"], pa.int64()),
        "value": pa.array(curves["curve_value"], pa.float64()),
    })


def _folder(run: str) -> str:
    """The folder name of a run: percent-encoded, and never hidden from readers (which skip names that
    start with "." or "_")."""
    name = quote(run, safe="")
    return name if not name.startswith((".", "_")) else f"%{ord(name[0]):02X}{name[1:]}"


def _write_checkpoint_file(table: pa.Table, base: Path, run: str, level: int) -> None:
    """``table`` with ``run`` and ``level`` columns first, as ``base/<run>/level_<level>.parquet``, replaced
    atomically (a reader never sees half a file)."""
    table = table.drop_columns([c for c in ("run", "level") if c in table.column_names])
    table = table.add_column(0, "level", pa.array(np.full(table.num_rows, level, dtype=np.int64)))
    table = table.add_column(0, "run", pa.array([run] * table.num_rows, pa.string()))
    folder = base / _folder(run)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".", suffix=".tmp", delete=False) as handle:
        temporary = Path(handle.name)
    try:
        pq.write_table(table, temporary)
        os.replace(temporary, folder / f"level_{int(level)}.parquet")
    finally:
        temporary.unlink(missing_ok=True)


def percolation_curves(checkpoint: Checkpoint) -> pd.DataFrame:
    """The percolation curves of the three orders (default points and samples), one tidy table."""
    return pd.concat([percolation(checkpoint, order) for order in ORDERS], ignore_index=True)


EXPORTED_ANALYSES = {
    "components": (components, {}),
    "percolation": (percolation_curves, {}),
    "thresholds": (thresholds, {}),
    "degrees": (degrees, {}),
    "persistence": (neural_persistence, {}),
    "tccr": (tccr, {}),
    "overlap": (overlap, {}),
    "motifs": (motifs, {}),
    "locality": (unit_locality, {}),
}
"""What ``export --analyses`` writes besides ``summary``: name -> (analysis, options), each with its command's
defaults."""


def _export_analyses(archive, base: Path, run: str, level: int, summary: pd.DataFrame) -> None:
    """The checkpoint's row of ``summary`` (that of ``query summary``, stored metrics included) and each
    analysis's tidy table under ``base/<name>/<run>/`` (cached, so a re-export is quick); one that does not
    apply to the checkpoint (locality without pixel inputs) is left out."""
    row = summary[(summary["run"] == run) & (summary["level"] == level)]
    _write_checkpoint_file(pa.Table.from_pandas(row, preserve_index=False), base / "summary", run, level)
    for name, (function, options) in EXPORTED_ANALYSES.items():
        try:
            table = archive.analyze(function, run, level, **options)
        except InputError:
            continue
        _write_checkpoint_file(pa.Table.from_pandas(table, preserve_index=False), base / name, run, level)


def export_parquet(
    archive, directory: str | os.PathLike, run: str | None = None, progress=None, analyses: bool = False
) -> pd.DataFrame:
    """Export every checkpoint (or those of ``run``) of ``archive`` under ``directory``; returns the listing.
    With ``analyses``, also the summary and every analysis of :data:`EXPORTED_ANALYSES` under
    ``directory/analyses``."""
    base = Path(directory)
    listing = archive.checkpoints(run)
    if run is not None and listing.empty:
        archive.levels(run)  # raises NotFound for an unknown run
    base.mkdir(parents=True, exist_ok=True)
    summary = archive.summary(sorted(set(listing["run"]))) if analyses and not listing.empty else None
    for row in listing.itertuples():
        if progress:
            progress(f"{row.run} level {row.level}")
        checkpoint = archive.checkpoint(row.run, row.level)
        _write_checkpoint_file(edge_table(checkpoint), base / "edges", row.run, row.level)
        _write_checkpoint_file(neuron_table(checkpoint), base / "neurons", row.run, row.level)
        curves = curve_table(checkpoint)
        if curves is not None:
            _write_checkpoint_file(curves, base / "curves", row.run, row.level)
        if analyses:
            _export_analyses(archive, base / "analyses", row.run, row.level, summary)
    listing_file = base / "checkpoints.parquet"
    if listing_file.exists():
        earlier = pd.read_parquet(listing_file)
        exported = set(zip(listing["run"], listing["level"]))
        keep = [(r, l) not in exported for r, l in zip(earlier["run"], earlier["level"])]
        listing = pd.concat([earlier[keep], listing], ignore_index=True).sort_values(["run", "level"])
    listing.to_parquet(listing_file, index=False)
    return listing
