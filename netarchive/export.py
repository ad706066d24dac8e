"""Parquet export for pandas: one hive-partitioned dataset of synapses and one of neurons.

Layout (``pandas.read_parquet(DIR + "/edges")`` gives ``run`` and ``level`` columns from the paths)::

    DIR/edges/run=<run>/level=<level>/*.parquet     layer, src, dst, w
    DIR/neurons/run=<run>/level=<level>/*.parquet   layer, index[, channel, y, x]
    DIR/curves/run=<run>/level=<level>/*.parquet    metric, iteration, value (training curves, where logged)
    DIR/checkpoints.parquet                         the `netarchive ls` listing
    DIR/analyses/<name>/run=<run>/level=<level>/    with --analyses: each analysis's tidy table

Exporting a checkpoint again replaces its partitions; other checkpoints in DIR are kept.
"""
from __future__ import annotations

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
from netarchive.store.base import curve_properties

EDGE_SCHEMA = pa.schema([("layer", pa.int16()), ("src", pa.int32()), ("dst", pa.int32()), ("w", pa.float32())])


def edge_table(checkpoint: Checkpoint) -> pa.Table:
    """The synapses of a checkpoint: ``layer`` (index of the source layer), ``src``, ``dst`` (indices within
    their layers) and ``w``."""
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
    """The neurons of a checkpoint: ``layer``, ``index`` and, for pixel inputs, ``channel``, ``y``, ``x``."""
    layer = checkpoint.neuron_layers()
    columns = {"layer": layer.astype(np.int16), "index": (np.arange(checkpoint.neurons) - checkpoint.offsets[layer]).astype(np.int32)}
    coordinates = checkpoint.input_coordinates()
    if coordinates is not None:
        inputs = checkpoint.widths[0]
        for name, values in zip(("channel", "y", "x"), coordinates):
            full = np.zeros(checkpoint.neurons, dtype=np.int32)
            full[:inputs] = values
            columns[name] = pa.array(full, mask=layer != 0)
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
    for row in listing.itertuples():
        if progress:
            progress(f"{row.run} level {row.level}")
        checkpoint = archive.checkpoint(row.run, row.level)
        _write_partition(edge_table(checkpoint), base / "edges", row.run, row.level)
        _write_partition(neuron_table(checkpoint), base / "neurons", row.run, row.level)
        curves = curve_table(checkpoint)
        if curves is not None:
            _write_partition(curves, base / "curves", row.run, row.level)
        if analyses:
            _export_analyses(archive, base / "analyses", row.run, row.level)
    listing_file = base / "checkpoints.parquet"
    if listing_file.exists():
        earlier = pd.read_parquet(listing_file)
        exported = set(zip(listing["run"], listing["level"]))
        keep = [(r, l) not in exported for r, l in zip(earlier["run"], earlier["level"])]
        listing = pd.concat([earlier[keep], listing], ignore_index=True).sort_values(["run", "level"])
    listing.to_parquet(listing_file, index=False)
    return listing
