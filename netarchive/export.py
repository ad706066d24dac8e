"""Parquet export for pandas: one hive-partitioned dataset of synapses and one of neurons.

Layout (``pandas.read_parquet(DIR + "/edges")`` gives ``run`` and ``level`` columns from the paths)::

    DIR/edges/run=<run>/level=<level>/*.parquet        layer, src, dst, w, ky, kx
    DIR/neurons/run=<run>/level=<level>/*.parquet      group, index, channel, y, x, bias, bn_weight, bn_bias, bn_mean, bn_var
    DIR/connections/run=<run>/level=<level>/*.parquet  kind, source, src, target, dst
    DIR/checkpoints.parquet                            the `netarchive ls` listing, with architecture, activation, meta
    DIR/analyses/<name>/run=<run>/level=<level>/       with --analyses: each analysis's tidy table

``layer`` is the weight layer's forward index, ``src``/``dst`` are indices within its source and target
groups (the architecture's ``layers[layer]``), ``ky``/``kx`` the kernel offset (null for Linear layers);
``group`` is the neuron group (forward order, 0 = inputs) and ``index`` the neuron within it; a
connection's ``source``/``target`` are groups. Columns without a value are null (coordinates of units that
are not pixels, biases and batch-norm statistics where there are none). ``architecture`` is the JSON of
``Checkpoint.architecture()``; ``netarchive ingest DIR`` reads an export back (loaders/exported.py).

Exporting a checkpoint again replaces its partitions; other checkpoints in DIR are kept.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from netarchive.analysis.components import components
from netarchive.analysis.degrees import degrees
from netarchive.analysis.locality import unit_locality
from netarchive.analysis.motifs import motifs
from netarchive.analysis.percolation import ORDERS, percolation, thresholds
from netarchive.analysis.persistence import neural_persistence
from netarchive.analysis.spanning import overlap, tccr
from netarchive.analysis.summary import summary_row
from netarchive.errors import InputError
from netarchive.model import Checkpoint
from netarchive.model.columns import architecture_json, connection_columns, neuron_columns, synapse_columns

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


def _write_partition(table: pa.Table, base: Path, run: str, level: int) -> None:
    table = table.append_column("run", pa.array([run] * table.num_rows, pa.string()))
    table = table.append_column("level", pa.array(np.full(table.num_rows, level, dtype=np.int64)))
    ds.write_dataset(
        table,
        base,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("run", pa.string()), ("level", pa.int64())]), flavor="hive"),
        existing_data_behavior="delete_matching",
        basename_template="part-{i}.parquet",
    )


def percolation_curves(checkpoint: Checkpoint) -> pd.DataFrame:
    """The percolation curves of the three orders (default points and samples), one tidy table."""
    return pd.concat([percolation(checkpoint, order) for order in ORDERS], ignore_index=True)


EXPORTED_ANALYSES = {
    "summary": (summary_row, {}),
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
"""What ``export --analyses`` writes: name -> (analysis, options), each with its command's defaults."""


def _export_analyses(archive, base: Path, run: str, level: int) -> None:
    """Each analysis's tidy table under ``base/<name>/run=…/level=…/`` (cached, so a re-export is quick);
    one that does not apply to the checkpoint (locality without pixel inputs) is left out."""
    for name, (function, options) in EXPORTED_ANALYSES.items():
        try:
            table = archive.analyze(function, run, level, **options)
        except InputError:
            continue
        table = table.drop(columns=[c for c in ("run", "level") if c in table.columns])
        _write_partition(pa.Table.from_pandas(table, preserve_index=False), base / name, run, level)


def export_parquet(
    archive, directory: str | os.PathLike, run: str | None = None, progress=None, analyses: bool = False
) -> pd.DataFrame:
    """Export every checkpoint (or those of ``run``) of ``archive`` under ``directory``; returns the listing.
    With ``analyses``, also every analysis of :data:`EXPORTED_ANALYSES` under ``directory/analyses``."""
    base = Path(directory)
    listing = archive.checkpoints(run)
    if run is not None and listing.empty:
        archive.levels(run)  # raises NotFound for an unknown run
    base.mkdir(parents=True, exist_ok=True)
    structure = []
    for row in listing.itertuples():
        if progress:
            progress(f"{row.run} level {row.level}")
        checkpoint = archive.checkpoint(row.run, row.level)
        _write_partition(edge_table(checkpoint), base / "edges", row.run, row.level)
        _write_partition(neuron_table(checkpoint), base / "neurons", row.run, row.level)
        _write_partition(connection_table(checkpoint), base / "connections", row.run, row.level)
        structure.append({"architecture": architecture_json(checkpoint), "activation": checkpoint.activation,
                          "meta": json.dumps(checkpoint.meta)})
        if analyses:
            _export_analyses(archive, base / "analyses", row.run, row.level)
    listing = pd.concat([listing.reset_index(drop=True), pd.DataFrame(structure, columns=STRUCTURE_COLUMNS)], axis=1)
    listing_file = base / "checkpoints.parquet"
    if listing_file.exists():
        earlier = pd.read_parquet(listing_file)
        exported = set(zip(listing["run"], listing["level"]))
        keep = [(r, l) not in exported for r, l in zip(earlier["run"], earlier["level"])]
        listing = pd.concat([earlier[keep], listing], ignore_index=True).sort_values(["run", "level"])
    listing.to_parquet(listing_file, index=False)
    return listing.drop(columns=STRUCTURE_COLUMNS, errors="ignore")
