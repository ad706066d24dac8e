"""The embedded archive: a LadybugDB database in a directory, no server needed.

Layout of an archive directory::

    ARCHIVE/graph.lbdb      the LadybugDB database (schema in cypher/schema.md)
    ARCHIVE/netarchive.json the versions that wrote it, read *before* the database is opened

LadybugDB upgrades its on-disk format on open and cannot go back, so the version check happens on the
JSON file first. Neurons get a 64-bit key ``checkpoint_id << 32 | global_index``, which makes bulk writes
(``COPY`` from Arrow, about 2 M synapses/s) and range reads of one checkpoint cheap.

Deleting relationships row by row in LadybugDB is slow (about 30 k/s measured), while dropping and
re-copying the synapse table runs at about 1.5 M/s. ``delete`` takes whichever is cheaper, always inside
one transaction, so ``rm`` and ``--replace`` stay atomic.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from netarchive.errors import AlreadyArchived, InputError, NotFound, StoreError
from netarchive.model import ACTIVATIONS, Checkpoint, Layer
from netarchive.store.base import CHECKPOINT_FIELDS, Progress, Store, check_property_name

FORMAT = 1
DATABASE_FILE = "graph.lbdb"
VERSIONS_FILE = "netarchive.json"
REBUILD_FACTOR = 40
"""Rebuild the synapse table instead of deleting rows when fewer than this many synapses per deleted
one remain (deleting a row costs about this many times as much as copying one back)."""

_NODE_TABLES = {
    "Run": "name STRING PRIMARY KEY, activation STRING",
    "Checkpoint": (
        "id INT64 PRIMARY KEY, run STRING, level INT64, neurons INT64, edges INT64, sparsity DOUBLE, "
        "layer_names STRING[], widths INT64[], input_shape INT64[]"
    ),
    "Neuron": "id INT64 PRIMARY KEY, run STRING, level INT64, layer INT64, `index` INT64, channel INT64, y INT64, x INT64, bias DOUBLE",
    "Counter": "name STRING PRIMARY KEY, value INT64",
}
_REL_TABLES = {"HAS_CHECKPOINT": "FROM Run TO Checkpoint", "SYNAPSE": "FROM Neuron TO Neuron, w FLOAT"}
_CHECKPOINT_COLUMNS = frozenset(
    {"id", "run", "level", "neurons", "edges", "sparsity", "layer_names", "widths", "input_shape", "layers"}
)
_RUN_COLUMNS = frozenset({"name", "run", "activation"})
_NEURON_COLUMNS = frozenset({"id", "run", "level", "layer", "index", "channel", "y", "x", "bias"})


def _ladybug_minor() -> str:
    return ".".join(version("ladybug").split(".")[:2])


def _neuron_key(checkpoint_id: int, global_index) -> np.ndarray:
    return (np.int64(checkpoint_id) << np.int64(32)) + np.asarray(global_index, dtype=np.int64)


class LadybugStore(Store):
    """An archive in a local directory (see the module docstring for the layout)."""

    def __init__(self, path: str | Path, *, read_only: bool = False):
        import ladybug

        self.path = Path(path).expanduser()
        self.location = str(self.path)
        self.read_only = read_only
        self._check_versions()
        try:
            self._db = ladybug.Database(str(self.path / DATABASE_FILE), read_only=read_only)
            self._conn = ladybug.Connection(self._db)
        except RuntimeError as error:
            raise _open_error(error, self.location) from None
        if not read_only:
            self._create_schema()

    # -- opening -------------------------------------------------------------------------------
    def _check_versions(self) -> None:
        versions_file = self.path / VERSIONS_FILE
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.location} is a file, not an archive directory")
        if not versions_file.exists():
            if self.read_only:
                raise NotFound(f"no archive at {self.location} (create one with `netarchive ingest`)")
            if self.path.exists() and any(self.path.iterdir()):
                raise StoreError(f"{self.location} is a non-empty directory that is not a netarchive archive")
            self.path.mkdir(parents=True, exist_ok=True)
            versions_file.write_text(
                json.dumps({"format": FORMAT, "ladybug": version("ladybug"), "netarchive": version("netarchive")})
            )
            return
        try:
            written = json.loads(versions_file.read_text())
            written_minor = ".".join(str(written["ladybug"]).split(".")[:2])
        except (ValueError, KeyError, TypeError):
            raise StoreError(f"{versions_file} is damaged: cannot tell which LadybugDB version wrote the archive") from None
        if written.get("format") != FORMAT or written_minor != _ladybug_minor():
            raise StoreError(
                f"the archive at {self.location} was written by LadybugDB {written['ladybug']} (archive format "
                f"{written.get('format')}), this installation has LadybugDB {version('ladybug')} (format {FORMAT}); "
                f"opening it would upgrade it irreversibly: install `ladybug=={written_minor}.*` to use it, "
                f"or export it with that version and ingest again"
            )

    def _create_schema(self) -> None:
        for name, columns in _NODE_TABLES.items():
            self._conn.execute(f"CREATE NODE TABLE IF NOT EXISTS {name}({columns})")
        for name, columns in _REL_TABLES.items():
            self._conn.execute(f"CREATE REL TABLE IF NOT EXISTS {name}({columns})")

    def close(self) -> None:
        if getattr(self, "_conn", None) is not None:
            self._conn.close()
            self._db.close()
            self._conn = None

    # -- statements ----------------------------------------------------------------------------
    def _run(self, query: str, params: Mapping | None = None):
        try:
            return self._conn.execute(query, dict(params or {}))
        except RuntimeError as error:
            raise StoreError(_first_line(error)) from None

    def _rows(self, query: str, params: Mapping | None = None) -> list[list]:
        return self._run(query, params).get_all()

    def _arrow(self, query: str) -> pa.Table:
        """A bulk read through LadybugDB's native Arrow path (about 2x ``execute``; it takes no parameters)."""
        try:
            return self._conn.query_as_arrow(query, _ARROW_CHUNK).get_as_arrow()
        except RuntimeError as error:
            raise StoreError(_first_line(error)) from None

    @contextmanager
    def _transaction(self):
        """One write transaction; any exception (KeyboardInterrupt included) rolls everything back."""
        if self.read_only:
            raise StoreError(f"the archive at {self.location} is open read-only")
        self._run("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        self._run("COMMIT")

    def _rollback(self) -> None:
        """Roll back; LadybugDB has already done so itself when a statement of the transaction failed."""
        try:
            self._conn.execute("ROLLBACK")
        except RuntimeError as error:
            if "No active transaction" not in str(error):
                raise

    def _columns(self, table: str) -> dict[str, str]:
        info = self._run(f"CALL table_info('{table}') RETURN name, type").get_all()  # table: one of ours
        return {name: kind for name, kind in info}

    def _ensure_columns(self, table: str, values: Mapping[str, object], kind: str, reserved, what: str) -> None:
        existing = self._columns(table)
        for name in values:
            check_property_name(name, reserved, what)
            if name not in existing:
                self._run(f"ALTER TABLE {table} ADD `{name}` {kind}")
            elif existing[name] != kind:
                raise StoreError(f"{what} {name!r} is stored as {existing[name]} in this archive, not {kind}")

    # -- writing -------------------------------------------------------------------------------
    def write(self, checkpoint: Checkpoint, *, replace: bool = False, progress: Progress | None = None) -> None:
        step = progress or (lambda _: None)
        with self._transaction():
            existing = self._checkpoint_id(checkpoint.run, checkpoint.level)
            if existing is not None:
                if not replace:
                    raise AlreadyArchived(
                        f"run {checkpoint.run!r} level {checkpoint.level} is already archived (use --replace to overwrite it)"
                    )
                step("removing the old checkpoint")
                self._delete_ids([existing])
            self._ensure_columns("Run", checkpoint.meta, "STRING", _RUN_COLUMNS, "meta key")
            checkpoint_id = self._next_id()
            step("checkpoint")
            self._write_run_and_checkpoint(checkpoint, checkpoint_id)
            step("neurons")
            self._run("COPY Neuron FROM $rows", {"rows": _neuron_table(checkpoint, checkpoint_id)})
            step(f"{checkpoint.edges:,} synapses")
            self._run("COPY SYNAPSE FROM $rows", {"rows": _synapse_table(checkpoint, checkpoint_id)})
            step("commit")

    def _next_id(self) -> int:
        rows = self._rows("MERGE (c:Counter {name: 'checkpoint'}) ON CREATE SET c.value = 0 SET c.value = c.value + 1 RETURN c.value")
        return int(rows[0][0])

    def _write_run_and_checkpoint(self, checkpoint: Checkpoint, checkpoint_id: int) -> None:
        self._run("MERGE (r:Run {name: $run}) SET r.activation = $activation", {"run": checkpoint.run, "activation": checkpoint.activation})
        for key, value in checkpoint.meta.items():
            self._run(f"MATCH (r:Run {{name: $run}}) SET r.`{key}` = $value", {"run": checkpoint.run, "value": str(value)})
        self._run(
            "MATCH (r:Run {name: $run}) "
            "CREATE (r)-[:HAS_CHECKPOINT]->(c:Checkpoint {id: $id}) "
            "SET c.run = $run, c.level = $level, c.neurons = $neurons, c.edges = $edges, c.sparsity = $sparsity, "
            "c.layer_names = $layer_names, c.widths = $widths, c.input_shape = $input_shape",
            {
                "run": checkpoint.run,
                "id": checkpoint_id,
                "level": checkpoint.level,
                "neurons": checkpoint.neurons,
                "edges": checkpoint.edges,
                "sparsity": checkpoint.sparsity,
                "layer_names": list(checkpoint.layer_names),
                "widths": [int(w) for w in checkpoint.widths],
                "input_shape": list(checkpoint.input_shape) if checkpoint.input_shape else None,
            },
        )
        self._write_metrics(checkpoint.run, checkpoint.level, checkpoint.metrics)

    def _write_metrics(self, run: str, level: int, metrics: Mapping[str, float]) -> None:
        if not metrics:
            return
        self._ensure_columns("Checkpoint", metrics, "DOUBLE", _CHECKPOINT_COLUMNS, "metric")
        sets = ", ".join(f"c.`{key}` = $m_{key}" for key in metrics)
        self._run(
            f"MATCH (c:Checkpoint {{run: $run, level: $level}}) SET {sets}",
            {"run": run, "level": int(level), **{f"m_{key}": float(value) for key, value in metrics.items()}},
        )

    # -- reading -------------------------------------------------------------------------------
    def _checkpoint_id(self, run: str, level: int) -> int | None:
        rows = self._rows("MATCH (c:Checkpoint {run: $run, level: $level}) RETURN c.id", {"run": run, "level": int(level)})
        return int(rows[0][0]) if rows else None

    def checkpoints(self, run: str | None = None) -> pd.DataFrame:
        where = "" if run is None else "WHERE c.run = $run "
        table = self._run(f"MATCH (c:Checkpoint) {where}RETURN c.* ORDER BY c.run, c.level", {"run": run}).get_as_df()
        table.columns = [column.removeprefix("c.") for column in table.columns]
        table["layers"] = [len(names) for names in table["layer_names"]] if len(table) else pd.Series(dtype=int)
        metrics = [column for column in table.columns if column not in _CHECKPOINT_COLUMNS]
        return table[list(CHECKPOINT_FIELDS) + metrics].reset_index(drop=True)

    def read(self, run: str, level: int) -> Checkpoint:
        found = self._run(
            "MATCH (r:Run)-[:HAS_CHECKPOINT]->(c:Checkpoint {run: $run, level: $level}) RETURN r.*, c.*",
            {"run": run, "level": int(level)},
        ).rows_as_dict().get_all()
        if not found:
            if not self._rows("MATCH (r:Run {name: $run}) RETURN r.name", {"run": run}):
                raise NotFound.run(run, self.location)
            raise NotFound.checkpoint(run, level, self.location)
        row = found[0]
        checkpoint_id, widths = row["c.id"], row["c.widths"]
        offsets = np.concatenate([[0], np.cumsum(widths)])
        biases = self._biases(checkpoint_id, offsets[-1])
        layers = []
        for l, name in enumerate(row["c.layer_names"]):
            lo, hi = _neuron_key(checkpoint_id, offsets[l]), _neuron_key(checkpoint_id, offsets[l + 1])
            edges = self._arrow(_LAYER_SYNAPSES % (int(lo), int(hi)))
            src = edges.column(0).to_numpy() - lo
            dst = edges.column(1).to_numpy() - _neuron_key(checkpoint_id, offsets[l + 1])
            bias = biases[offsets[l + 1] : offsets[l + 2]]
            bias = None if np.isnan(bias).all() else np.nan_to_num(bias)
            layers.append(Layer(name, widths[l], widths[l + 1], src, dst, edges.column(2).to_numpy(), bias))
        metrics = {
            key[2:]: float(value)
            for key, value in row.items()
            if key.startswith("c.") and key[2:] not in _CHECKPOINT_COLUMNS and value is not None
        }
        meta = {key[2:]: value for key, value in row.items() if key.startswith("r.") and key != "r.name" and value is not None}
        activation = meta.pop("activation", None) or "relu"
        return Checkpoint(run, int(level), tuple(layers), row["c.input_shape"], metrics, meta, activation)

    def _biases(self, checkpoint_id: int, neurons: int) -> np.ndarray:
        """The bias of every neuron of a checkpoint in global order, NaN where there is none."""
        lo = _key_range(checkpoint_id)["lo"]
        # Not the Arrow path: it returns nulls as zeros (LadybugDB 0.22).
        table = self._run(
            "MATCH (n:Neuron) WHERE n.id >= $lo AND n.id < $hi RETURN n.id, n.bias", _key_range(checkpoint_id)
        ).get_as_arrow()
        biases = np.full(neurons, np.nan)
        index = table.column(0).to_numpy() - lo
        biases[index] = table.column(1).to_numpy(zero_copy_only=False)
        return biases

    def set_metrics(self, run: str, level: int, metrics: Mapping[str, float]) -> None:
        with self._transaction():
            if self._checkpoint_id(run, level) is None:
                raise NotFound.checkpoint(run, level, self.location)
            self._write_metrics(run, level, metrics)

    def set_activation(self, run: str, activation: str) -> None:
        if activation not in ACTIVATIONS:
            raise InputError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        with self._transaction():
            if not self._rows("MATCH (r:Run {name: $run}) SET r.activation = $a RETURN r.name", {"run": run, "a": activation}):
                raise NotFound.run(run, self.location)

    def cypher(self, query: str, params: Mapping[str, object] | None = None) -> pd.DataFrame:
        self._run("BEGIN TRANSACTION READ ONLY")
        try:
            result = self._run(query, params)
        except StoreError as error:
            if re.search(r"\.index\b", query) and "Parser exception" in str(error):
                raise StoreError(f"{error} (in LadybugDB `index` is a keyword: write n.`index`)") from None
            raise
        finally:
            self._rollback()
        if isinstance(result, list):
            raise StoreError("give one Cypher statement at a time")
        return result.get_as_df()

    # -- deleting ------------------------------------------------------------------------------
    def delete(self, run: str, level: int | None = None) -> int:
        where = "" if level is None else "WHERE c.level = $level "
        rows = self._rows(f"MATCH (c:Checkpoint {{run: $run}}) {where}RETURN c.id", {"run": run, "level": level})
        if not rows:
            if level is None or not self._rows("MATCH (r:Run {name: $run}) RETURN r.name", {"run": run}):
                raise NotFound.run(run, self.location)
            raise NotFound.checkpoint(run, level, self.location)
        with self._transaction():
            self._delete_ids([int(row[0]) for row in rows])
            self._run("MATCH (r:Run {name: $run}) WHERE NOT (r)-[:HAS_CHECKPOINT]->() DELETE r", {"run": run})
        return len(rows)

    def _delete_ids(self, ids: list[int]) -> None:
        """Delete checkpoints by id, inside the caller's transaction."""
        deleted, total = self._rows(
            "MATCH (c:Checkpoint) RETURN sum(CASE WHEN list_contains($ids, c.id) THEN c.edges ELSE 0 END), sum(c.edges)",
            {"ids": ids},
        )[0]
        if total - deleted < REBUILD_FACTOR * deleted:
            self._rebuild_synapses_without(ids)
        else:
            for checkpoint_id in ids:
                self._run(
                    "MATCH (a:Neuron)-[s:SYNAPSE]->() WHERE a.id >= $lo AND a.id < $hi DELETE s",
                    _key_range(checkpoint_id),
                )
        for checkpoint_id in ids:
            self._run("MATCH (n:Neuron) WHERE n.id >= $lo AND n.id < $hi DELETE n", _key_range(checkpoint_id))
            self._run("MATCH (c:Checkpoint {id: $id}) DETACH DELETE c", {"id": checkpoint_id})

    def _rebuild_synapses_without(self, ids: list[int]) -> None:
        columns = self._columns("SYNAPSE")
        kept = self._run(
            "MATCH (a:Neuron)-[s:SYNAPSE]->(b:Neuron) WHERE NOT list_contains($ids, a.id / 4294967296) "
            "RETURN a.id AS `from`, b.id AS `to`, " + ", ".join(f"s.`{name}`" for name in columns),
            {"ids": ids},
        ).get_as_arrow()
        self._run("DROP TABLE SYNAPSE")
        properties = ", ".join(f"`{name}` {kind}" for name, kind in columns.items())
        self._run(f"CREATE REL TABLE SYNAPSE(FROM Neuron TO Neuron, {properties})")
        if kept.num_rows:
            self._run("COPY SYNAPSE FROM $rows", {"rows": kept.rename_columns(["from", "to", *columns])})

    # -- write-back ----------------------------------------------------------------------------
    def set_neuron_properties(self, run: str, level: int, properties: Mapping[str, np.ndarray]) -> None:
        checkpoint_id = self._checkpoint_id(run, level)
        if checkpoint_id is None:
            raise NotFound.checkpoint(run, level, self.location)
        arrays = {name: pa.array(np.asarray(values)) for name, values in properties.items()}
        with self._transaction():
            for name, values in arrays.items():
                check_property_name(name, _NEURON_COLUMNS, "neuron property")
                kind = _LADYBUG_TYPES.get(str(values.type))
                if kind is None:
                    raise StoreError(f"cannot store neuron property {name!r} of type {values.type}")
                self._ensure_columns("Neuron", {name: None}, kind, _NEURON_COLUMNS, "neuron property")
                count = len(values)
                self._run(
                    f"UNWIND range(0, $n - 1) AS i MATCH (n:Neuron {{id: $base + i}}) SET n.`{name}` = $values[i + 1]",
                    {"n": count, "base": int(_neuron_key(checkpoint_id, 0)), "values": values.to_pylist()},
                )

    def set_input_shape(self, run: str, shape: tuple[int, int, int], level: int | None = None) -> None:
        shape = tuple(int(s) for s in shape)
        where = "" if level is None else "AND c.level = $level "
        rows = self._rows(
            f"MATCH (c:Checkpoint) WHERE c.run = $run {where}RETURN c.id, c.level, c.widths[1]",
            {"run": run, "level": level},
        )
        if not rows:
            if level is None or not self._rows("MATCH (r:Run {name: $run}) RETURN r.name", {"run": run}):
                raise NotFound.run(run, self.location)
            raise NotFound.checkpoint(run, level, self.location)
        pixels = int(np.prod(shape))
        for _, each, inputs in rows:
            if inputs != pixels:
                raise InputError(
                    f"input shape {','.join(map(str, shape))} has {pixels} pixels but level {each} of run {run!r} "
                    f"has {inputs} inputs"
                )
        channel, y, x = (axis.tolist() for axis in np.unravel_index(np.arange(pixels), shape))
        with self._transaction():
            for checkpoint_id, _, _ in rows:
                self._run("MATCH (c:Checkpoint {id: $id}) SET c.input_shape = $shape", {"id": checkpoint_id, "shape": list(shape)})
                self._run(
                    "UNWIND range(0, $n - 1) AS i MATCH (n:Neuron {id: $base + i}) "
                    "SET n.channel = $channel[i + 1], n.y = $y[i + 1], n.x = $x[i + 1]",
                    {"n": pixels, "base": int(_neuron_key(checkpoint_id, 0)), "channel": channel, "y": y, "x": x},
                )

    def set_synapse_flag(self, run: str, level: int, name: str, layer: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
        raise NotImplementedError("synapse write-back comes with the spanning-forest analyses")


_ARROW_CHUNK = 1 << 20
_LAYER_SYNAPSES = "MATCH (a:Neuron)-[s:SYNAPSE]->(b:Neuron) WHERE a.id >= %d AND a.id < %d RETURN a.id, b.id, s.w"
"""The synapses of one layer by the key range of its source neurons; the bounds are integers computed
from the checkpoint's id (never user text), formatted in because the Arrow path takes no parameters.
(That path returns nulls as zeros in LadybugDB 0.22: use it only for columns without nulls.)"""

_LADYBUG_TYPES = {"int64": "INT64", "int32": "INT64", "double": "DOUBLE", "float": "DOUBLE", "bool": "BOOL", "string": "STRING"}


def _key_range(checkpoint_id: int) -> dict[str, int]:
    return {"lo": int(_neuron_key(checkpoint_id, 0)), "hi": int(_neuron_key(checkpoint_id + 1, 0))}


def _neuron_table(checkpoint: Checkpoint, checkpoint_id: int) -> pa.Table:
    n = checkpoint.neurons
    layer = checkpoint.neuron_layers()
    index = np.arange(n) - checkpoint.offsets[layer]
    coordinates = checkpoint.input_coordinates()
    columns = {}
    for axis, name in enumerate(("channel", "y", "x")):
        values = np.zeros(n, dtype=np.int64)
        valid = np.zeros(n, dtype=bool)
        if coordinates is not None:
            values[: len(coordinates[axis])] = coordinates[axis]
            valid[: len(coordinates[axis])] = True
        columns[name] = pa.array(values, mask=~valid)
    bias = np.zeros(n, dtype=np.float64)
    has_bias = np.zeros(n, dtype=bool)
    for l, each in enumerate(checkpoint.layers):
        if each.bias is not None:
            bias[checkpoint.offsets[l + 1] : checkpoint.offsets[l + 2]] = each.bias
            has_bias[checkpoint.offsets[l + 1] : checkpoint.offsets[l + 2]] = True
    columns["bias"] = pa.array(bias, mask=~has_bias)
    return pa.table(
        {
            "id": _neuron_key(checkpoint_id, np.arange(n)),
            "run": pa.array([checkpoint.run] * n, pa.string()),
            "level": np.full(n, checkpoint.level, dtype=np.int64),
            "layer": layer.astype(np.int64),
            "index": index.astype(np.int64),
            **columns,
        }
    )


def _synapse_table(checkpoint: Checkpoint, checkpoint_id: int) -> pa.Table:
    src, dst, w, _ = checkpoint.edge_list()
    return pa.table({"from": _neuron_key(checkpoint_id, src), "to": _neuron_key(checkpoint_id, dst), "w": w})


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _open_error(error: RuntimeError, location: str) -> StoreError:
    text = str(error)
    if "Could not set lock" in text:
        holder = re.search(r"PID (\d+)", text)
        who = f" (process {holder.group(1)})" if holder else ""
        return StoreError(f"the archive at {location} is in use by another netarchive{who}: wait for it to finish and try again")
    return StoreError(f"cannot open the archive at {location}: {_first_line(error)}")
