"""Files for ``neo4j-admin database import full``: an archive too large for Bolt, loaded offline.

``netarchive export --neo4j-import DIR`` writes header files with typed columns and headerless CSV data
files (one per checkpoint for neurons and synapses), in the schema of cypher/schema.md::

    DIR/runs.header.csv          name:ID(Run),activation,<meta>...      runs.csv
    DIR/checkpoints.header.csv   :ID(Checkpoint),run,level:long,...     checkpoints.csv
    DIR/has_checkpoint.header.csv :START_ID(Run),:END_ID(Checkpoint)    has_checkpoint.csv
    DIR/neurons.header.csv       :ID(Neuron),run,level:long,group:long,index:long,channel:long,y:long,x:long,
                                 bias:double,bn_weight:double,bn_bias:double,bn_mean:double,bn_var:double
                                                                        neurons-<n>.csv
    DIR/synapses.header.csv      :START_ID(Neuron),:END_ID(Neuron),w:float,layer:long,ky:long,kx:long
                                                                        synapses-<n>.csv
    DIR/connections.header.csv   :START_ID(Neuron),:END_ID(Neuron),kind  connections-<n>.csv

Neuron ids are ``<n>:<global index>`` with ``n`` the checkpoint's number in this export. Lists use ``;``
(the importer's default array delimiter). :func:`import_command` gives the command that loads them into
a stopped, empty database; afterwards ``netarchive init`` creates the constraints and indexes.
"""
from __future__ import annotations

import csv
import os
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from netarchive.export import neuron_table
from netarchive.model.columns import NEURON_COLUMNS, NEURON_VALUES, architecture_json, connection_columns, synapse_columns
from netarchive.store.base import CHECKPOINT_FIELDS, recorded_counts

_CHECKPOINT_TYPES = {"level": "long", "neurons": "long", "edges": "long", "sparsity": "double"}


def export_neo4j_import(archive, directory: str | os.PathLike, run: str | None = None, progress=None) -> pd.DataFrame:
    """Write the import files of every checkpoint (or those of ``run``) under ``directory``; returns the listing."""
    base = Path(directory)
    listing = archive.checkpoints(run)
    if run is not None and listing.empty:
        archive.levels(run)
    base.mkdir(parents=True, exist_ok=True)
    for stale in base.glob("*.csv"):
        stale.unlink()
    metrics = [column for column in listing.columns if column not in CHECKPOINT_FIELDS]
    checkpoints, runs = [], {}
    for number, row in enumerate(listing.itertuples(index=False)):
        if progress:
            progress(f"{row.run} level {row.level}")
        checkpoint = archive.checkpoint(row.run, row.level)
        runs.setdefault(checkpoint.run, {}).update({**checkpoint.meta, "activation": checkpoint.activation})
        checkpoints.append([
            str(number), checkpoint.run, checkpoint.level, checkpoint.neurons, checkpoint.edges, checkpoint.sparsity,
            ";".join(checkpoint.layer_names), ";".join(map(str, checkpoint.widths)),
            ";".join(map(str, checkpoint.input_shape)) if checkpoint.input_shape else "", checkpoint.architecture_source,
            architecture_json(checkpoint), ";".join(map(str, recorded_counts(checkpoint)["layer_synapses"])),
            recorded_counts(checkpoint)["connections"], *[checkpoint.metrics.get(name, "") for name in metrics],
        ])
        _write_neurons(checkpoint, number, base / f"neurons-{number}.csv")
        _write_synapses(checkpoint, number, base / f"synapses-{number}.csv")
        _write_connections(checkpoint, number, base / f"connections-{number}.csv")
    meta_keys = sorted({key for meta in runs.values() for key in meta})
    _write_csv(base / "runs.header.csv", [["name:ID(Run)", *meta_keys]])
    _write_csv(base / "runs.csv", [[name, *[meta.get(key, "") for key in meta_keys]] for name, meta in runs.items()])
    _write_csv(base / "checkpoints.header.csv", [[
        ":ID(Checkpoint)", "run", "level:long", "neurons:long", "edges:long", "sparsity:double",
        "layer_names:string[]", "widths:long[]", "input_shape:long[]", "architecture_source", "architecture",
        "layer_synapses:long[]", "connections:long", *[f"{name}:double" for name in metrics],
    ]])
    _write_csv(base / "checkpoints.csv", checkpoints)
    _write_csv(base / "has_checkpoint.header.csv", [[":START_ID(Run)", ":END_ID(Checkpoint)"]])
    _write_csv(base / "has_checkpoint.csv", [[row[1], row[0]] for row in checkpoints])
    _write_csv(base / "neurons.header.csv", [[":ID(Neuron)", "run", "level:long", *[
        f"{name}:{'double' if name in NEURON_VALUES else 'long'}" for name in NEURON_COLUMNS]]])
    _write_csv(base / "synapses.header.csv", [[":START_ID(Neuron)", ":END_ID(Neuron)", "w:float", "layer:long", "ky:long", "kx:long"]])
    _write_csv(base / "connections.header.csv", [[":START_ID(Neuron)", ":END_ID(Neuron)", "kind"]])
    return listing


def import_command(directory: str | os.PathLike, database: str = "neo4j") -> str:
    """The ``neo4j-admin`` command that loads ``directory`` (as the server sees it) into ``database``."""
    d = str(directory).rstrip("/")
    parts = [
        "neo4j-admin", "database", "import", "full", database, "--overwrite-destination", "--array-delimiter=;",
        f"--nodes=Run={d}/runs.header.csv,{d}/runs.csv",
        f"--nodes=Checkpoint={d}/checkpoints.header.csv,{d}/checkpoints.csv",
        f"--nodes=Neuron={d}/neurons.header.csv,{d}/neurons-[0-9]+.csv",
        f"--relationships=HAS_CHECKPOINT={d}/has_checkpoint.header.csv,{d}/has_checkpoint.csv",
        f"--relationships=SYNAPSE={d}/synapses.header.csv,{d}/synapses-[0-9]+.csv",
        f"--relationships=CONNECTION={d}/connections.header.csv,{d}/connections-[0-9]+.csv",
    ]
    return " ".join(shlex.quote(part) for part in parts)


def _write_csv(path: Path, rows) -> None:
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def _ids(number: int, global_index: np.ndarray) -> pa.Array:
    return pa.compute.binary_join_element_wise(pa.scalar(str(number)), pa.array(global_index).cast(pa.string()), ":")


def _write_neurons(checkpoint, number: int, path: Path) -> None:
    import pyarrow.compute  # noqa: F401 - registers pa.compute

    n = checkpoint.neurons
    columns = {"id": _ids(number, np.arange(n)), "run": pa.array([checkpoint.run] * n, pa.string()),
               "level": np.full(n, checkpoint.level, dtype=np.int64)}
    neurons = neuron_table(checkpoint)
    columns.update(zip(neurons.column_names, neurons.columns))
    pacsv.write_csv(pa.table(columns), path, pacsv.WriteOptions(include_header=False, quoting_style="needed"))


def _write_synapses(checkpoint, number: int, path: Path) -> None:
    import pyarrow.compute  # noqa: F401

    from netarchive.export import nullable

    columns = synapse_columns(checkpoint)
    table = pa.table({"from": _ids(number, columns["src"]), "to": _ids(number, columns["dst"]), "w": columns["w"],
                      "layer": columns["layer"], "ky": nullable(columns["ky"]), "kx": nullable(columns["kx"])})
    pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=False, quoting_style="needed"))


def _write_connections(checkpoint, number: int, path: Path) -> None:
    import pyarrow.compute  # noqa: F401

    columns = connection_columns(checkpoint)
    table = pa.table({"from": _ids(number, columns["src"]), "to": _ids(number, columns["dst"]),
                      "kind": pa.array(columns["kind"].tolist(), pa.string())})
    pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
