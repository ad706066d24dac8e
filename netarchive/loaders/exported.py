"""A directory written by ``netarchive export`` (export.py's Parquet layout), read back as checkpoints:
what makes export -> ingest a round trip, for moving runs between archives or backends.

The architecture kept in ``checkpoints.parquet`` gives the structure; the edge, neuron and connection
partitions of each (run, level) give the arrays (model/columns.py rebuilds the checkpoint). An export made
before the architecture was kept holds plain chains, read as such.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from netarchive.errors import InputError
from netarchive.model import ASSUMED_SEQUENTIAL, Checkpoint
from netarchive.model.columns import NEURON_VALUES, assemble, layer_groups, parse_architecture, split_synapses

LISTING = "checkpoints.parquet"
_LISTED = {"run", "level", "layers", "neurons", "edges", "sparsity", "architecture_source", "architecture", "activation", "meta"}


def is_export(path: Path) -> bool:
    return path.is_dir() and (path / LISTING).is_file() and (path / "edges").is_dir()


def read(path: Path, *, run: str, level: int | None = None) -> list[Checkpoint]:
    """The checkpoints of run ``run`` in the export (or of its only run, renamed ``run``), all levels or
    ``level``."""
    listing = pd.read_parquet(path / LISTING)
    runs = sorted(set(listing["run"]))
    chosen = run if run in runs else runs[0] if len(runs) == 1 else None
    if chosen is None:
        raise InputError(f"{path} is an export of the runs {', '.join(runs)}: give one of them as --run")
    rows = listing[(listing["run"] == chosen) & ((listing["level"] == level) if level is not None else True)]
    if rows.empty:
        raise InputError(f"{path} holds no level {level} of run {chosen!r}")
    return [_checkpoint(path, row, run) for row in rows.to_dict("records")]


def _partition(path: Path, what: str, run: str, level: int) -> pd.DataFrame:
    directory = path / what / f"run={run}" / f"level={level}"
    if not directory.is_dir():
        if what == "connections":
            return pd.DataFrame(columns=["kind", "source", "src", "target", "dst"])
        raise InputError(f"{path} lacks {what} of run {run!r} level {level}: export it again")
    return pd.read_parquet(directory)


def _checkpoint(path: Path, row: dict, run: str) -> Checkpoint:
    source_run, level = row["run"], int(row["level"])
    architecture = parse_architecture(row.get("architecture"))
    edges = _partition(path, "edges", source_run, level)
    neurons = _partition(path, "neurons", source_run, level)
    group = neurons["group" if "group" in neurons else "layer"].to_numpy(np.int64)
    widths = np.bincount(group).tolist()
    names = [spec["name"] for spec in architecture["layers"]] if architecture else [f"layer{l}.weight" for l in range(len(widths) - 1)]
    sources, targets = layer_groups(architecture, len(names))
    offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
    layer = edges["layer"].to_numpy(np.int64)
    columns = {
        "layer": layer, "w": edges["w"].to_numpy(np.float32),
        "src": edges["src"].to_numpy(np.int64) + offsets[np.asarray(sources, dtype=np.int64)[layer]],
        "dst": edges["dst"].to_numpy(np.int64) + offsets[np.asarray(targets, dtype=np.int64)[layer]],
        **{axis: edges[axis].fillna(-1).to_numpy(np.int16) for axis in ("ky", "kx") if axis in edges},
    }
    order = np.lexsort((neurons["index"].to_numpy(np.int64), group))
    values = {name: neurons[name].to_numpy(np.float64, na_value=np.nan)[order] for name in NEURON_VALUES if name in neurons}
    metrics = {key: float(value) for key, value in row.items() if key not in _LISTED and pd.notna(value)}
    meta = json.loads(row["meta"]) if isinstance(row.get("meta"), str) else {}
    input_shape = architecture.get("input_shape") if architecture else None
    return assemble(
        architecture, split_synapses(columns, widths, sources, targets, run, level), values, run=run, level=level,
        widths=widths, layer_names=names, input_shape=input_shape, activation=row.get("activation") or "relu",
        architecture_source=row.get("architecture_source") or ASSUMED_SEQUENTIAL, metrics=metrics, meta=meta,
    )
