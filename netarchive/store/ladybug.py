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

Values always go into statements as parameters. The only text formatted into statements is names (the
archive's tables and columns, and the property names users choose for metrics, meta keys and write-back,
which become columns), always through :func:`_statement`, which checks each one where it is formatted in.
"""
from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from netarchive.errors import AlreadyArchived, InputError, NotFound, StoreError
from netarchive.model import ACTIVATIONS, Checkpoint, Layer
from netarchive.store.base import (
    CHECKPOINT_FIELDS, CURVE_PROPERTIES, Progress, Store, check_input_shape, check_property_name, curve_properties,
    curve_table, curves_from_properties,
)

FORMAT = 1
DATABASE_FILE = "graph.lbdb"
VERSIONS_FILE = "netarchive.json"
REBUILD_FACTOR = 40
"""Rebuild the synapse table instead of deleting rows when fewer than this many synapses per deleted
one remain (deleting a row costs about this many times as much as copying one back)."""
UPDATE_REBUILD_FACTOR = 200
"""The same for setting a synapse property: updating a synapse found by its two neurons costs about 200
times as much as copying one back (0.6 ms against 3 us, bench/spanning.md)."""

_NODE_TABLES = {
    "Run": "name STRING PRIMARY KEY, activation STRING",
    "Checkpoint": (
        "id INT64 PRIMARY KEY, run STRING, level INT64, neurons INT64, edges INT64, sparsity DOUBLE, "
        "layer_names STRING[], widths INT64[], input_shape INT64[], written STRING"
    ),
    "Neuron": "id INT64 PRIMARY KEY, run STRING, level INT64, layer INT64, `index` INT64, channel INT64, y INT64, x INT64, bias DOUBLE",
    "Counter": "name STRING PRIMARY KEY, value INT64",
}
_REL_TABLES = {"HAS_CHECKPOINT": "FROM Run TO Checkpoint", "SYNAPSE": "FROM Neuron TO Neuron, w FLOAT"}
_SCHEMA = [f"CREATE NODE TABLE IF NOT EXISTS {name}({columns})" for name, columns in _NODE_TABLES.items()] + [
    f"CREATE REL TABLE IF NOT EXISTS {name}({columns})" for name, columns in _REL_TABLES.items()
]
_TABLE_INFO = {name: f"CALL table_info('{name}') RETURN name, type" for name in (*_NODE_TABLES, *_REL_TABLES)}
"""Statements on the archive's own tables (fixed names, never user text; table_info takes no parameter)."""
_CHECKPOINT_COLUMNS = frozenset(
    {"id", "run", "level", "neurons", "edges", "sparsity", "layer_names", "widths", "input_shape", "layers", "written",
     *CURVE_PROPERTIES}
)
_CURVE_TYPES = dict(zip(CURVE_PROPERTIES, ("STRING[]", "INT64[]", "DOUBLE[]")))
"""The curve lists are added to the Checkpoint table by the first write that has curves (older archives lack them)."""
_RUN_COLUMNS = frozenset({"name", "run", "activation"})
_NEURON_COLUMNS = frozenset({"id", "run", "level", "layer", "index", "channel", "y", "x", "bias"})
_SYNAPSE_COLUMNS = frozenset({"w", "from", "to", "_id", "_src", "_dst"})


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
        if not (self.path / DATABASE_FILE).exists():
            raise StoreError(
                f"{self.location} has {VERSIONS_FILE} but no {DATABASE_FILE}: the archive's database is gone "
                "(restore it, or remove the directory to start a new archive)"
            )
        if written.get("format") != FORMAT or written_minor != _ladybug_minor():
            raise StoreError(
                f"the archive at {self.location} was written by LadybugDB {written['ladybug']} (archive format "
                f"{written.get('format')}), this installation has LadybugDB {version('ladybug')} (format {FORMAT}); "
                f"opening it would upgrade it irreversibly: install `ladybug=={written_minor}.*` to use it, "
                f"or export it with that version and ingest again"
            )

    def _create_schema(self) -> None:
        for statement in _SCHEMA:
            self._conn.execute(statement)

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
        info = self._run(_TABLE_INFO[table]).get_all()
        return {name: kind for name, kind in info}

    def _ensure_columns(self, table: str, values: Mapping[str, object], kind: str, reserved, what: str) -> list[tuple[str, str]]:
        """Add the missing columns ``values`` name (checked names, of type ``kind``); returns those added."""
        existing, added = self._columns(table), []
        for name in values:
            check_property_name(name, reserved, what)
            if name not in existing:
                self._run(_statement("ALTER TABLE {table} ADD {name} {kind}", table=table, name=name, kind=_Type(kind)))
                added.append((table, name))
            elif existing[name] != kind:
                raise StoreError(f"{what} {name!r} is stored as {existing[name]} in this archive, not {kind}")
        return added

    def _columns_for(self, checkpoint: Checkpoint) -> list[tuple[str, str]]:
        """Add the columns the meta, metrics and curves of ``checkpoint`` need, before its write's transaction.

        Each ALTER is a statement of its own: LadybugDB 0.22 corrupts a string dictionary when a column is
        added inside a transaction that then writes the table, once one of its strings was updated earlier
        (the commit's checkpoint then fails: "String dictionary index is outside the offset table"; a run
        written twice, then a run with a new meta key, was enough). Returns the columns added, which
        :meth:`write` drops again if the write fails.
        """
        if self.read_only:
            raise StoreError(f"the archive at {self.location} is open read-only")
        added = self._ensure_columns("Run", checkpoint.meta, "STRING", _RUN_COLUMNS, "meta key")
        added += self._ensure_columns("Checkpoint", checkpoint.metrics, "DOUBLE", _CHECKPOINT_COLUMNS, "metric")
        if checkpoint.curves:
            existing = self._columns("Checkpoint")
            for name, kind in _CURVE_TYPES.items():
                if name not in existing:
                    self._run(_statement("ALTER TABLE Checkpoint ADD {name} {kind}", name=name, kind=_Type(kind)))
                    added.append(("Checkpoint", name))
        return added

    def _drop_columns(self, columns: list[tuple[str, str]]) -> None:
        for table, name in reversed(columns):
            try:
                self._run(_statement("ALTER TABLE {table} DROP {name}", table=table, name=name))
            except StoreError:  # an empty column left behind holds no data
                pass

    # -- writing -------------------------------------------------------------------------------
    def write(self, checkpoint: Checkpoint, *, replace: bool = False, progress: Progress | None = None) -> None:
        added = self._columns_for(checkpoint)
        try:
            self._write(checkpoint, replace, progress or (lambda _: None))
        except BaseException:
            self._drop_columns(added)
            raise

    def _write(self, checkpoint: Checkpoint, replace: bool, step: Progress) -> None:
        with self._transaction():
            existing = self._checkpoint_id(checkpoint.run, checkpoint.level)
            if existing is not None:
                if not replace:
                    raise AlreadyArchived(
                        f"run {checkpoint.run!r} level {checkpoint.level} is already archived (use --replace to overwrite it)"
                    )
                step("removing the old checkpoint")
                self._delete_ids([existing])
            checkpoint_id = self._next_id()
            step("checkpoint")
            self._write_run_and_checkpoint(checkpoint, checkpoint_id)
            step("neurons")
            neurons = _neuron_table(checkpoint, checkpoint_id)
            self._run(_statement("COPY Neuron({columns}) FROM $rows", columns=neurons.column_names), {"rows": neurons})
            step(f"{checkpoint.edges:,} synapses")
            synapses = _synapse_table(checkpoint, checkpoint_id)
            self._run(_statement("COPY SYNAPSE({columns}) FROM $rows", columns=synapses.column_names[2:]), {"rows": synapses})
            step("commit")

    def _next_id(self) -> int:
        rows = self._rows("MERGE (c:Counter {name: 'checkpoint'}) ON CREATE SET c.value = 0 SET c.value = c.value + 1 RETURN c.value")
        return int(rows[0][0])

    def _write_run_and_checkpoint(self, checkpoint: Checkpoint, checkpoint_id: int) -> None:
        self._run("MERGE (r:Run {name: $run}) SET r.activation = $activation", {"run": checkpoint.run, "activation": checkpoint.activation})
        for key, value in checkpoint.meta.items():
            self._run(_statement("MATCH (r:Run {{name: $run}}) SET r.{key} = $value", key=key),
                      {"run": checkpoint.run, "value": str(value)})
        self._run(
            "MATCH (r:Run {name: $run}) "
            "CREATE (r)-[:HAS_CHECKPOINT]->(c:Checkpoint {id: $id}) "
            "SET c.run = $run, c.level = $level, c.neurons = $neurons, c.edges = $edges, c.sparsity = $sparsity, "
            "c.layer_names = $layer_names, c.widths = $widths, c.input_shape = $input_shape, c.written = $written",
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
                "written": uuid.uuid4().hex,
            },
        )
        self._write_metrics(checkpoint.run, checkpoint.level, checkpoint.metrics)
        self._write_curves(checkpoint_id, checkpoint)

    def _write_curves(self, checkpoint_id: int, checkpoint: Checkpoint) -> None:
        curves = curve_properties(checkpoint)
        if not curves:
            return
        self._run(
            "MATCH (c:Checkpoint {id: $id}) SET c.curve_metric = $curve_metric, c.curve_iteration = $curve_iteration, "
            "c.curve_value = $curve_value",
            {"id": checkpoint_id, **curves},
        )

    def _write_metrics(self, run: str, level: int, metrics: Mapping[str, float]) -> None:
        if not metrics:
            return
        self._ensure_columns("Checkpoint", metrics, "DOUBLE", _CHECKPOINT_COLUMNS, "metric")
        for key, value in metrics.items():
            self._run(
                _statement("MATCH (c:Checkpoint {{run: $run, level: $level}}) SET c.{key} = $value", key=key),
                {"run": run, "level": int(level), "value": float(value)},
            )

    # -- reading -------------------------------------------------------------------------------
    def _checkpoint_id(self, run: str, level: int) -> int | None:
        rows = self._rows("MATCH (c:Checkpoint {run: $run, level: $level}) RETURN c.id", {"run": run, "level": int(level)})
        return int(rows[0][0]) if rows else None

    def checkpoints(self, run: str | None = None) -> pd.DataFrame:
        query = "MATCH (c:Checkpoint) RETURN c.* ORDER BY c.run, c.level" if run is None else (
            "MATCH (c:Checkpoint) WHERE c.run = $run RETURN c.* ORDER BY c.run, c.level"
        )
        table = self._run(query, {"run": run}).get_as_df()
        table.columns = [column.removeprefix("c.") for column in table.columns]
        table["layers"] = [len(names) for names in table["layer_names"]] if len(table) else pd.Series(dtype=int)
        metrics = [column for column in table.columns if column not in _CHECKPOINT_COLUMNS]
        return table[list(CHECKPOINT_FIELDS) + metrics].reset_index(drop=True)

    def runs(self) -> pd.DataFrame:
        table = self._run("MATCH (r:Run) WHERE (r)-[:HAS_CHECKPOINT]->() RETURN r.* ORDER BY r.name").get_as_df()
        table.columns = ["run" if column == "r.name" else column.removeprefix("r.") for column in table.columns]
        return table.reset_index(drop=True)

    def curves(self, runs: list[str] | None = None) -> pd.DataFrame:
        if "curve_metric" not in self._columns("Checkpoint"):  # no checkpoint ever had curves
            return curve_table([])
        if runs is None:
            return curve_table(self._rows("MATCH (c:Checkpoint) RETURN " + _CURVE_FIELDS))
        return curve_table(self._rows("MATCH (c:Checkpoint) WHERE list_contains($runs, c.run) RETURN " + _CURVE_FIELDS,
                                      {"runs": list(runs)}))

    def versions(self) -> dict[tuple[str, int], str]:
        rows = self._rows("MATCH (c:Checkpoint) RETURN c.run, c.level, c.written")
        return {(run, int(level)): written for run, level, written in rows}

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    def read(self, run: str, level: int) -> Checkpoint:
        found = self._run(
            "MATCH (r:Run)-[:HAS_CHECKPOINT]->(c:Checkpoint {run: $run, level: $level}) RETURN r.*, c.*",
            {"run": run, "level": int(level)},
        ).rows_as_dict().get_all()
        if not found:
            raise self.not_found(run, level)
        row = found[0]
        checkpoint_id, widths = row["c.id"], row["c.widths"]
        offsets = np.concatenate([[0], np.cumsum(widths)])
        biases = self._biases(checkpoint_id, offsets[-1])
        global_index = self._global_index(checkpoint_id)
        layers = []
        for l, name in enumerate(row["c.layer_names"]):
            lo, hi = _neuron_key(checkpoint_id, offsets[l]), _neuron_key(checkpoint_id, offsets[l + 1])
            edges = self._arrow(_LAYER_SYNAPSES % (int(lo), int(hi)))
            src = global_index(edges.column(0).to_numpy()) - offsets[l]
            dst = global_index(edges.column(1).to_numpy()) - offsets[l + 1]
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
        curves = curves_from_properties(*(row.get(f"c.{name}") for name in CURVE_PROPERTIES))
        return Checkpoint(run, int(level), tuple(layers), row["c.input_shape"], metrics, meta, activation, curves)

    def _global_index(self, checkpoint_id: int):
        """A function from LadybugDB's internal node offsets to the checkpoint's global neuron indices.

        Bulk reads return ``offset(id(n))`` rather than the key ``n.id``: fetching a property of the far
        end of every synapse costs a lookup per synapse (reads are 3x faster without it)."""
        lo, hi = _key_range(checkpoint_id).values()
        table = self._arrow(_NEURON_OFFSETS % (lo, hi))
        internal, key = table.column(0).to_numpy(), table.column(1).to_numpy() - lo
        first = internal.min() if len(internal) else 0
        lookup = np.full((internal.max() - first + 1) if len(internal) else 0, -1, dtype=np.int64)
        lookup[internal - first] = key
        return lambda offsets: lookup[offsets - first]

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
                raise self.not_found(run, level)
            self._write_metrics(run, level, metrics)

    def set_activation(self, run: str, activation: str) -> None:
        if activation not in ACTIVATIONS:
            raise InputError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        with self._transaction():
            if not self._rows("MATCH (r:Run {name: $run}) SET r.activation = $a RETURN r.name", {"run": run, "a": activation}):
                raise self.not_found(run)

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
        query = "MATCH (c:Checkpoint {run: $run}) RETURN c.id" if level is None else (
            "MATCH (c:Checkpoint {run: $run}) WHERE c.level = $level RETURN c.id"
        )
        rows = self._rows(query, {"run": run, "level": level})
        if not rows:
            raise self.not_found(run, level)
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
            self._rebuild_synapses(without=ids)
        else:
            for checkpoint_id in ids:
                self._run(
                    "MATCH (a:Neuron)-[s:SYNAPSE]->() WHERE a.id >= $lo AND a.id < $hi DELETE s",
                    _key_range(checkpoint_id),
                )
        for checkpoint_id in ids:
            self._run("MATCH (n:Neuron) WHERE n.id >= $lo AND n.id < $hi DELETE n", _key_range(checkpoint_id))
            self._run("MATCH (c:Checkpoint {id: $id}) DETACH DELETE c", {"id": checkpoint_id})

    def _rebuild_synapses(self, *, without: list[int] = (), flag: tuple[str, int, np.ndarray] | None = None) -> None:
        """Rewrite the whole synapse table in bulk, inside the caller's transaction: read every synapse with
        all its properties as Arrow, drop the table, create it again (defaults kept) and copy back.

        About 1.5 M synapses/s, against about 30 k/s for deleting or updating rows one by one. Leaves out
        the synapses of the checkpoints ``without``; ``flag = (name, checkpoint_id, pair codes)`` sets the
        BOOL column ``name`` of that checkpoint's synapses to whether their pair code (see
        :func:`_pair_codes`) is listed, other checkpoints keeping their values.
        """
        schema = self._rows("CALL table_info('SYNAPSE') RETURN name, type, `default expression`")
        columns = [name for name, _, _ in schema]
        match = "MATCH (a:Neuron)-[s:SYNAPSE]->(b:Neuron) "
        if len(without):
            match += "WHERE NOT list_contains($ids, a.id / 4294967296) "
        projection = ", ".join(_statement("s.{name}", name=name) for name in columns)
        rows = self._run(
            match + "RETURN a.id, b.id, " + projection, {"ids": [int(i) for i in without]} if len(without) else {}
        ).get_as_arrow().rename_columns(["from", "to", *columns])
        if flag is not None:
            name, checkpoint_id, wanted = flag
            origin, target = rows.column("from").to_numpy(), rows.column("to").to_numpy()
            mine = (origin >> 32) == checkpoint_id
            listed = np.isin(_pair_codes(origin, target), wanted) & mine
            if listed.sum() != len(wanted):
                raise InputError(f"{len(wanted) - int(listed.sum())} of the synapses to mark are not in the checkpoint")
            values = pc.if_else(pa.array(mine), pa.array(listed), rows.column(name))
            rows = rows.set_column(rows.column_names.index(name), name, values)
        self._run("DROP TABLE SYNAPSE")
        properties = ", ".join(
            _statement("{name} {kind}", name=name, kind=_Type(kind))
            + ("" if str(default).upper() == "NULL" else _statement(" DEFAULT {default}", default=_Type(default)))
            for name, kind, default in schema
        )
        self._run("CREATE REL TABLE SYNAPSE(FROM Neuron TO Neuron, " + properties + ")")
        if rows.num_rows:
            self._run("COPY SYNAPSE FROM $rows", {"rows": rows})

    # -- write-back ----------------------------------------------------------------------------
    def set_neuron_properties(self, run: str, level: int, properties: Mapping[str, np.ndarray]) -> None:
        checkpoint_id = self._checkpoint_id(run, level)
        if checkpoint_id is None:
            raise self.not_found(run, level)
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
                    _statement("UNWIND range(0, $n - 1) AS i MATCH (n:Neuron {{id: $base + i}}) "
                               "SET n.{name} = $values[i + 1]", name=name),
                    {"n": count, "base": int(_neuron_key(checkpoint_id, 0)), "values": values.to_pylist()},
                )

    def set_input_shape(self, run: str, shape: tuple[int, int, int], level: int | None = None) -> None:
        shape = tuple(int(s) for s in shape)
        query = "MATCH (c:Checkpoint) WHERE c.run = $run RETURN c.id, c.level, c.widths[1]" if level is None else (
            "MATCH (c:Checkpoint) WHERE c.run = $run AND c.level = $level RETURN c.id, c.level, c.widths[1]"
        )
        rows = self._rows(query, {"run": run, "level": level})
        if not rows:
            raise self.not_found(run, level)
        pixels = check_input_shape(run, shape, {each: inputs for _, each, inputs in rows})
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
        """Only the synapses whose flag changes are touched: a BOOL column added with ``DEFAULT false``
        (and every later ``COPY``) starts all synapses false, so marking a spanning forest updates about
        |V| rows one by one. When many rows change (a column holding nulls, say), the synapse table is
        rebuilt in bulk instead (:meth:`_rebuild_synapses`, chosen with UPDATE_REBUILD_FACTOR)."""
        check_property_name(name, _SYNAPSE_COLUMNS, "synapse property")
        found = self._rows(
            "MATCH (c:Checkpoint {run: $run, level: $level}) RETURN c.id, c.widths", {"run": run, "level": int(level)}
        )
        if not found:
            raise self.not_found(run, level)
        checkpoint_id, widths = int(found[0][0]), np.asarray(found[0][1], dtype=np.int64)
        wanted = np.unique(_pair_codes(*_flagged_keys(checkpoint_id, widths, layer, src, dst)))
        with self._transaction():
            kind = self._columns("SYNAPSE").get(name)
            if kind is None:
                self._run(_statement("ALTER TABLE SYNAPSE ADD {name} BOOL DEFAULT false", name=name))
            elif kind != "BOOL":
                raise StoreError(f"synapse property {name!r} is stored as {kind} in this archive, not BOOL")
            marked = self._run(
                _statement("MATCH (a:Neuron)-[s:SYNAPSE]->(b:Neuron) WHERE a.id >= $lo AND a.id < $hi "
                           "AND (s.{name} IS NULL OR s.{name}) RETURN a.id, b.id, s.{name}", name=name),
                _key_range(checkpoint_id),
            ).get_as_arrow()
            codes = _pair_codes(marked.column(0).to_numpy(), marked.column(1).to_numpy())
            is_true = marked.column(2).fill_null(False).to_numpy(zero_copy_only=False)
            to_true, to_false = np.setdiff1d(wanted, codes[is_true]), np.setdiff1d(codes, wanted)
            total = self._rows("MATCH (c:Checkpoint) RETURN sum(c.edges)")[0][0] or 0
            if total < UPDATE_REBUILD_FACTOR * (len(to_true) + len(to_false)):
                self._rebuild_synapses(flag=(name, checkpoint_id, wanted))
                return
            for value, changes in ((False, to_false), (True, to_true)):
                changed = self._set_synapses(name, value, checkpoint_id, changes)
                if changed != len(changes):
                    raise InputError(f"{len(changes) - changed} of the synapses to mark are not in the checkpoint")

    def _set_synapses(self, name: str, value: bool, checkpoint_id: int, codes: np.ndarray) -> int:
        """Set one property on the synapses with these pair codes, row by row; returns how many matched."""
        if not len(codes):
            return 0
        base = int(_neuron_key(checkpoint_id, 0))
        pairs = np.stack([(codes >> 32) + base, (codes & 0xFFFFFFFF) + base], axis=1).tolist()
        return int(self._rows(
            _statement("UNWIND $pairs AS p MATCH (a:Neuron {{id: p[1]}})-[s:SYNAPSE]->(b:Neuron {{id: p[2]}}) "
                       "SET s.{name} = $value RETURN count(s)", name=name),
            {"pairs": pairs, "value": value},
        )[0][0])


_CURVE_FIELDS = "c.run, c.level, c.curve_metric, c.curve_iteration, c.curve_value ORDER BY c.run, c.level"
_ARROW_CHUNK = 1 << 20
_LAYER_SYNAPSES = (
    "MATCH (a:Neuron)-[s:SYNAPSE]->(b:Neuron) WHERE a.id >= %d AND a.id < %d RETURN offset(id(a)), offset(id(b)), s.w"
)
_NEURON_OFFSETS = "MATCH (n:Neuron) WHERE n.id >= %d AND n.id < %d RETURN offset(id(n)), n.id"
"""Bulk reads by key range (the synapses of one layer by their source neurons; the neurons of a checkpoint
with their internal offsets); the bounds are integers computed
from the checkpoint's id (never user text), formatted in because the Arrow path takes no parameters.
(That path returns nulls as zeros in LadybugDB 0.22: use it only for columns without nulls.)"""

_LADYBUG_TYPES = {"int64": "INT64", "int32": "INT64", "double": "DOUBLE", "float": "DOUBLE", "bool": "BOOL", "string": "STRING"}


def _pair_codes(origin: np.ndarray, target: np.ndarray) -> np.ndarray:
    """One int64 per synapse within a checkpoint: source global index << 32 | target global index."""
    return ((np.asarray(origin) & 0xFFFFFFFF) << 32) | (np.asarray(target) & 0xFFFFFFFF)


def _flagged_keys(checkpoint_id: int, widths: np.ndarray, layer, src, dst) -> tuple[np.ndarray, np.ndarray]:
    """Neuron keys of the synapses given as (layer, src, dst) within a checkpoint of these widths."""
    layer, src, dst = (np.asarray(values, dtype=np.int64) for values in (layer, src, dst))
    if not layer.shape == src.shape == dst.shape:
        raise InputError("layer, src and dst must be arrays of one length")
    if len(layer) and (
        layer.min() < 0 or layer.max() >= len(widths) - 1
        or (src < 0).any() or (src >= widths[layer]).any() or (dst < 0).any() or (dst >= widths[layer + 1]).any()
    ):
        raise InputError("a synapse to mark refers to a layer or neuron outside the checkpoint")
    offsets = np.concatenate([[0], np.cumsum(widths)])
    return _neuron_key(checkpoint_id, offsets[layer] + src), _neuron_key(checkpoint_id, offsets[layer + 1] + dst)


class _Type(str):
    """A column type or default literal to put into DDL (as opposed to a name, which gets backticks)."""


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPE = re.compile(r"(?i)(INT64|DOUBLE|FLOAT|BOOL|STRING)(\[\])?|true|false|-?\d+(\.\d+)?")


def _statement(template: str, **parts) -> str:
    """Fill names into a statement template, checking them where they are formatted in.

    A part is a name (backticked), a list of names (comma-separated) or a :class:`_Type`; anything else is
    refused. Values never come here: they are parameters.
    """
    def render(part) -> str:
        if isinstance(part, (list, tuple)):
            return ", ".join(render(each) for each in part)
        pattern = _TYPE if isinstance(part, _Type) else _IDENTIFIER
        if not pattern.fullmatch(str(part)):
            raise StoreError(f"{part!r} cannot be put into a statement")
        return str(part) if isinstance(part, _Type) else f"`{part}`"

    return template.format(**{key: render(part) for key, part in parts.items()})


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
    """Keys of both ends and the weight of every synapse, one Arrow chunk per layer (no global copy)."""
    base, offsets = _neuron_key(checkpoint_id, 0), checkpoint.offsets
    chunks = [
        pa.record_batch(
            {
                "from": layer.src.astype(np.int64) + (base + offsets[l]),
                "to": layer.dst.astype(np.int64) + (base + offsets[l + 1]),
                "w": layer.w,
            }
        )
        for l, layer in enumerate(checkpoint.layers)
    ]
    return pa.Table.from_batches(chunks)


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
