"""Parquet export for pandas: one dataset of synapses and one of neurons, one file per checkpoint.

Layout (every file holds its own ``run`` and ``level`` columns)::

    DIR/edges/<run>/level_<level>.parquet           run, level, layer, src, dst, w, ky, kx
    DIR/neurons/<run>/level_<level>.parquet         run, level, group, index, channel, y, x, bias, bn_weight, bn_bias, bn_mean, bn_var
    DIR/connections/<run>/level_<level>.parquet     run, level, kind, source, src, target, dst
    DIR/curves/<run>/level_<level>.parquet          run, level, metric, iteration, value (training curves, where logged)
    DIR/checkpoints.parquet                         the `netarchive ls` listing, with architecture, activation, meta
    DIR/analyses/<name>/<run>/level_<level>.parquet with --analyses: each analysis's tidy table

``layer`` is the weight layer's forward index, ``src``/``dst`` are indices within its source and target
groups (the architecture's ``layers[layer]``), ``ky``/``kx`` the kernel offset (null for Linear layers);
``group`` is the neuron group (forward order, 0 = inputs) and ``index`` the neuron within it; a
connection's ``source``/``target`` are groups. Columns without a value are null (coordinates of units that
are not pixels, biases and batch-norm statistics where there are none). ``architecture`` is the JSON of
``Checkpoint.architecture()``; ``netarchive ingest DIR`` reads an export back (loaders/exported.py).

Why not hive folders (``run=<run>/level=<level>``): ``pandas.read_parquet`` reads hive keys back as
categoricals in text order (levels 0, 1, 10, 11, 2, …), so sorting and grouping by level go wrong. With the
columns in the files, ``pandas.read_parquet(DIR + "/edges")`` gives ``run`` as text and ``level`` as an
integer, and ``filters=[("run", "==", "seed0")]`` works as before. Run names are
percent-encoded in folder names. Exporting a checkpoint again replaces its files; other checkpoints in DIR
are kept.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

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
from netarchive.loaders.exported import checkpoint_file
from netarchive.model import Checkpoint
from netarchive.model.columns import architecture_json, connection_columns, neuron_columns, synapse_columns
from netarchive.store.base import curve_properties

STRUCTURE_COLUMNS = ["architecture", "activation", "meta"]
"""What checkpoints.parquet adds to the listing so that an export can be ingested again."""

EDGE_SCHEMA = pa.schema([("layer", pa.int16()), ("src", pa.int32()), ("dst", pa.int32()), ("w", pa.float32()),
                         ("ky", pa.int16()), ("kx", pa.int16())])
NEURON_TYPES = {"group": pa.int32(), "index": pa.int32(), "channel": pa.int32(), "y": pa.int32(), "x": pa.int32()}


def edge_table(checkpoint: Checkpoint) -> pa.Table:
    """The synapses of a checkpoint, one per kernel weight: ``layer`` (forward index of the weight layer),
    ``src``, ``dst`` (indices within its source and target groups), ``w``, ``ky``, ``kx`` (null for Linear)."""
    columns = synapse_columns(checkpoint)
    offsets, layers = np.asarray(checkpoint.offsets), checkpoint.layers
    sources = np.array([layer.source for layer in layers])[columns["layer"]]
    targets = np.array([layer.target for layer in layers])[columns["layer"]]
    return pa.table([
        columns["layer"], (columns["src"] - offsets[sources]).astype(np.int32), (columns["dst"] - offsets[targets]).astype(np.int32),
        columns["w"], nullable(columns["ky"]), nullable(columns["kx"]),
    ], schema=EDGE_SCHEMA)


def neuron_table(checkpoint: Checkpoint) -> pa.Table:
    """The neurons of a checkpoint: ``group``, ``index``, pixel ``channel``, ``y``, ``x``, ``bias`` and the
    batch-norm statistics (null where absent)."""
    return pa.table({name: nullable(values).cast(NEURON_TYPES.get(name, pa.float64()))
                     for name, values in neuron_columns(checkpoint).items()})


def connection_table(checkpoint: Checkpoint) -> pa.Table:
    """The weightless edges: ``kind`` (add, concat, flatten), ``source`` group, ``src``, ``target`` group, ``dst``."""
    src, dst, which = checkpoint.connection_edges()
    offsets = np.asarray(checkpoint.offsets)
    source = np.array([c.source for c in checkpoint.connections] or [0], dtype=np.int32)[which]
    target = np.array([c.target for c in checkpoint.connections] or [0], dtype=np.int32)[which]
    return pa.table({
        "kind": pa.array(connection_columns(checkpoint)["kind"].tolist(), pa.string()),
        "source": source, "src": (src - offsets[source]).astype(np.int32),
        "target": target, "dst": (dst - offsets[target]).astype(np.int32),
    })


def nullable(values: np.ndarray) -> pa.Array:
    """A column of model.columns (-1 or NaN where absent) with nulls there."""
    values = np.asarray(values)
    return pa.array(values, mask=np.isnan(values) if values.dtype.kind == "f" else values < 0)


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


def _write_checkpoint_file(table: pa.Table, base: Path, run: str, level: int) -> None:
    """``table`` with ``run`` and ``level`` columns first, as ``base/<run>/level_<level>.parquet``, replaced
    atomically (a reader never sees half a file)."""
    table = table.drop_columns([c for c in ("run", "level") if c in table.column_names])
    table = table.add_column(0, "level", pa.array(np.full(table.num_rows, level, dtype=np.int64)))
    table = table.add_column(0, "run", pa.array([run] * table.num_rows, pa.string()))
    path = checkpoint_file(base, run, level)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".", suffix=".tmp", delete=False) as handle:
        temporary = Path(handle.name)
    try:
        pq.write_table(table, temporary)
        os.replace(temporary, path)
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
    structure = []
    for row in listing.itertuples():
        if progress:
            progress(f"{row.run} level {row.level}")
        checkpoint = archive.checkpoint(row.run, row.level)
        _write_checkpoint_file(edge_table(checkpoint), base / "edges", row.run, row.level)
        _write_checkpoint_file(neuron_table(checkpoint), base / "neurons", row.run, row.level)
        _write_checkpoint_file(connection_table(checkpoint), base / "connections", row.run, row.level)
        curves = curve_table(checkpoint)
        if curves is not None:
            _write_checkpoint_file(curves, base / "curves", row.run, row.level)
        structure.append({"architecture": architecture_json(checkpoint), "activation": checkpoint.activation,
                          "meta": json.dumps(checkpoint.meta)})
        if analyses:
            _export_analyses(archive, base / "analyses", row.run, row.level, summary)
    listing = pd.concat([listing.reset_index(drop=True), pd.DataFrame(structure, columns=STRUCTURE_COLUMNS)], axis=1)
    listing_file = base / "checkpoints.parquet"
    if listing_file.exists():
        earlier = pd.read_parquet(listing_file)
        exported = set(zip(listing["run"], listing["level"]))
        keep = [(r, l) not in exported for r, l in zip(earlier["run"], earlier["level"])]
        listing = pd.concat([earlier[keep], listing], ignore_index=True).sort_values(["run", "level"])
    listing.to_parquet(listing_file, index=False)
    return listing.drop(columns=STRUCTURE_COLUMNS, errors="ignore")
