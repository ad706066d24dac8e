"""The server archive: the same schema on a Neo4j 5 server, over Bolt with the official driver.

Schema (cypher/schema.md): ``(:Run {name, activation, ...meta})-[:HAS_CHECKPOINT]->(:Checkpoint {run, level,
neurons, edges, sparsity, layer_names, widths, input_shape, architecture_source, ...metrics})`` and ``(:Neuron {run, level, layer,
index, channel, y, x, bias})-[:SYNAPSE {w}]->(:Neuron)``. Neurons are keyed by a composite uniqueness constraint on
``(run, level, layer, index)`` (Community edition has no NODE KEY), and a layer's neurons are found by the
``neuron_layer`` index; checkpoints by ``(run, level)``.

Writing. Neurons go in with one ``UNWIND range(...)`` statement per layer; synapses in batches of
:data:`SYNAPSE_BATCH` rows sent as parallel lists (``$src``, ``$dst``, ``$w``), one layer at a time. Each
statement collects the two layers' neurons once (one index seek per layer, ordered by ``index``) and
finds a synapse's neurons by list position, so a row costs one relationship and no index seek (2-4x
faster than two composite-index seeks per row; bench/neo4j.md). A checkpoint of at most
``single_transaction`` synapses (old one included when replacing) is written in one transaction. A larger
one would need gigabytes of transaction state, so it is written in one transaction per batch while its
Checkpoint node carries ``incomplete: true``: every read skips such checkpoints, the final transaction
removes the mark, a failed write deletes what it wrote, and whatever a killed process left is deleted at
the start of the next write. Every write is an explicit transaction that the driver does not retry
(:meth:`Neo4jStore._transaction`). ``rm`` marks the checkpoint incomplete first, then deletes in batches, so it
disappears from readers at once. A ``--replace`` of such a checkpoint removes the old one before it writes
the new one (neurons are keyed by run and level: two copies cannot coexist), so a crash in between leaves
neither; never silently: reading that level names it as unfinished, and ``check`` lists it. Every
checkpoint records its synapses per layer (``layer_synapses``), which reads and ``check`` verify. One writer at a time per database (the embedded archive locks; a server
cannot tell a dead writer from a slow one).

Every statement is a module-level constant (``*_CYPHER``; ``{name}`` placeholders only for property names
that :func:`check_property_name` accepted), so tests/test_cypher_lint.py lints them all with Neo4j's own
front end.
"""
from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from netarchive.errors import AlreadyArchived, DamagedArchive, InputError, NotFound, StoreError
from netarchive.model import ACTIVATIONS, Checkpoint, Layer
from netarchive.store.base import (
    CHECKPOINT_FIELDS, CURVE_PROPERTIES, OLD_ARCHITECTURE_SOURCE, READ_ONLY_MESSAGE, Problem, Progress, Store,
    check_input_shape, check_property_name, check_storable, curve_properties, curve_table, curves_from_properties,
    damaged_problem, layer_mismatches, problem_table, recorded_counts, unfinished_problem, verify_counts,
)

SYNAPSE_BATCH = 20_000
"""Synapse rows per UNWIND statement. Batches of 10-50 k rows keep a statement's parameters a few hundred
kilobytes and its transaction state small while amortising the round trip; bench/bench_neo4j.py sweeps
the size against a configured server (see bench/neo4j.md)."""
SINGLE_TRANSACTION = 500_000
"""Checkpoints with at most this many synapses (old + new when replacing) are written in one transaction.
Neo4j 5.26 holds about 1.4 KiB of heap per created synapse until commit (bench/neo4j.md: 1 M synapses in
one transaction peaked at 1.4 GiB, 2.1 M passed the 1.4 GiB that ``dbms.memory.transaction.total.max``
allows a 2 GB heap), and one large transaction is slower than batches (9 k against 22 k synapses/s), so
500 k keeps well under the tools/neo4j server's limit (heap 2 GB) and docker/compose.yml's (4 GB)."""
DEFAULT_DATABASE = "neo4j"
MIN_SERVER_MAJOR = 5

# -- schema ------------------------------------------------------------------------------------------
SCHEMA_CYPHER = (
    "CREATE CONSTRAINT run_name IF NOT EXISTS FOR (r:Run) REQUIRE r.name IS UNIQUE",
    "CREATE CONSTRAINT checkpoint_key IF NOT EXISTS FOR (c:Checkpoint) REQUIRE (c.run, c.level) IS UNIQUE",
    "CREATE CONSTRAINT neuron_key IF NOT EXISTS FOR (n:Neuron) REQUIRE (n.run, n.level, n.layer, n.`index`) IS UNIQUE",
    "CREATE INDEX neuron_layer IF NOT EXISTS FOR (n:Neuron) ON (n.run, n.level, n.layer)",
    "CREATE INDEX neuron_checkpoint IF NOT EXISTS FOR (n:Neuron) ON (n.run, n.level)",
)
AWAIT_INDEXES_CYPHER = "CALL db.awaitIndexes($seconds)"
COMPONENTS_CYPHER = "CALL dbms.components() YIELD name, versions, edition RETURN name, versions, edition"
CONSTRAINTS_CYPHER = "SHOW CONSTRAINTS YIELD name RETURN name"
INDEXES_CYPHER = "SHOW INDEXES YIELD name RETURN name"
SCHEMA_NAMES = ("run_name", "checkpoint_key", "neuron_key", "neuron_layer", "neuron_checkpoint")

# -- writing -----------------------------------------------------------------------------------------
CREATE_CHECKPOINT_CYPHER = (
    "MERGE (r:Run {name: $run}) SET r += $meta, r.activation = $activation "
    "CREATE (r)-[:HAS_CHECKPOINT]->(c:Checkpoint {run: $run, level: $level}) "
    "SET c += $properties, c += $metrics"
)
CREATE_NEURONS_CYPHER = (
    "UNWIND range(0, $width - 1) AS i "
    "CREATE (:Neuron {run: $run, level: $level, layer: $layer, `index`: i, bias: $bias[i]})"
)
CREATE_PIXELS_CYPHER = (
    "UNWIND range(0, $width - 1) AS i "
    "CREATE (:Neuron {run: $run, level: $level, layer: 0, `index`: i, channel: $channel[i], y: $y[i], x: $x[i]})"
)
CREATE_SYNAPSES_CYPHER = (
    "MATCH (a:Neuron {run: $run, level: $level, layer: $layer}) WITH a ORDER BY a.`index` "
    "WITH collect(a) AS sources "
    "MATCH (b:Neuron {run: $run, level: $level, layer: $layer + 1}) WITH sources, b ORDER BY b.`index` "
    "WITH sources, collect(b) AS targets "
    "UNWIND range(0, size($targets) - 1) AS j "
    "WITH sources, targets[$targets[j]] AS b, j "
    "UNWIND range($bounds[j], $bounds[j + 1] - 1) AS i "
    "WITH sources[$src[i]] AS a, b, i "
    "CREATE (a)-[:SYNAPSE {w: $w[i]}]->(b)"
)
SET_METRICS_CYPHER = (
    "MATCH (c:Checkpoint {run: $run, level: $level}) WHERE c.incomplete IS NULL SET c += $metrics RETURN c.level AS level"
)
SET_ACTIVATION_CYPHER = "MATCH (r:Run {name: $run}) SET r.activation = $activation RETURN r.name AS name"
SET_INPUT_SHAPE_CYPHER = "MATCH (c:Checkpoint {run: $run, level: $level}) SET c.input_shape = $shape"
SET_PIXELS_CYPHER = (
    "UNWIND range(0, size($channel) - 1) AS i "
    "MATCH (n:Neuron {run: $run, level: $level, layer: 0, `index`: i}) "
    "SET n.channel = $channel[i], n.y = $y[i], n.x = $x[i]"
)
COMPLETE_CHECKPOINT_CYPHER = "MATCH (c:Checkpoint {run: $run, level: $level}) REMOVE c.incomplete"

# -- reading -----------------------------------------------------------------------------------------
CHECKPOINTS_CYPHER = (
    "MATCH (c:Checkpoint) WHERE c.incomplete IS NULL AND ($run IS NULL OR c.run = $run) "
    "RETURN properties(c) AS c ORDER BY c.run, c.level"
)
CHECKPOINT_CYPHER = (
    "MATCH (r:Run {name: $run})-[:HAS_CHECKPOINT]->(c:Checkpoint {run: $run, level: $level}) "
    "WHERE c.incomplete IS NULL RETURN properties(r) AS r, properties(c) AS c"
)
VERSIONS_CYPHER = (
    "MATCH (c:Checkpoint) WHERE c.incomplete IS NULL RETURN c.run AS run, c.level AS level, c.written AS written"
)
RUNS_CYPHER = (
    "MATCH (r:Run)-[:HAS_CHECKPOINT]->(c:Checkpoint) WHERE c.incomplete IS NULL "
    "WITH r, count(c) AS checkpoints RETURN r.name AS name, properties(r) AS r ORDER BY name"
)
CURVES_CYPHER = (
    "MATCH (c:Checkpoint) WHERE c.incomplete IS NULL AND c.curve_metric IS NOT NULL AND ($runs IS NULL OR c.run IN $runs) "
    "RETURN c.run AS run, c.level AS level, c.curve_metric AS metric, c.curve_iteration AS iteration, "
    "c.curve_value AS value ORDER BY run, level"
)
CHECKPOINT_EDGES_CYPHER = "MATCH (c:Checkpoint {run: $run, level: $level}) RETURN c.edges AS edges, c.incomplete AS incomplete"
UNFINISHED_CYPHER = "MATCH (c:Checkpoint {run: $run, level: $level}) WHERE c.incomplete = true RETURN c.level AS level"
COUNT_NEURONS_CYPHER = "MATCH (n:Neuron {run: $run, level: $level}) RETURN count(n) AS neurons"
BIASES_CYPHER = (
    "MATCH (n:Neuron {run: $run, level: $level}) WHERE n.bias IS NOT NULL "
    "RETURN n.layer AS layer, n.`index` AS i, n.bias AS bias"
)
READ_LAYER_CYPHER = (
    "MATCH (a:Neuron {run: $run, level: $level, layer: $layer})-[s:SYNAPSE]->(b:Neuron) "
    "RETURN a.`index` AS src, collect(b.`index`) AS dst, collect(s.w) AS w"
)

# -- deleting ----------------------------------------------------------------------------------------
MARK_INCOMPLETE_CYPHER = (
    "MATCH (c:Checkpoint {run: $run}) WHERE $level IS NULL OR c.level = $level "
    "SET c.incomplete = true RETURN c.level AS level"
)
INCOMPLETE_CYPHER = "MATCH (c:Checkpoint) WHERE c.incomplete = true RETURN c.run AS run, c.level AS level"
DELETE_SYNAPSES_BATCH_CYPHER = (
    "MATCH (:Neuron {run: $run, level: $level})-[s:SYNAPSE]->() "
    "WITH s LIMIT $batch DELETE s RETURN count(*) AS deleted"
)
DELETE_NEURONS_BATCH_CYPHER = (
    "MATCH (n:Neuron {run: $run, level: $level}) WITH n LIMIT $batch DETACH DELETE n RETURN count(*) AS deleted"
)
DELETE_NEURONS_CYPHER = "MATCH (n:Neuron {run: $run, level: $level}) DETACH DELETE n"
DELETE_CHECKPOINT_CYPHER = "MATCH (c:Checkpoint {run: $run, level: $level}) DETACH DELETE c"
DELETE_EMPTY_RUN_CYPHER = "MATCH (r:Run {name: $run}) WHERE NOT EXISTS { (r)-[:HAS_CHECKPOINT]->() } DELETE r"

# -- checking ----------------------------------------------------------------------------------------
CHECK_CHECKPOINTS_CYPHER = (
    "MATCH (c:Checkpoint) OPTIONAL MATCH (r:Run)-[:HAS_CHECKPOINT]->(c) "
    "RETURN c.run AS run, c.level AS level, c.incomplete AS incomplete, c.widths AS widths, c.edges AS edges, "
    "c.layer_synapses AS layer_synapses, r.name AS linked ORDER BY run, level"
)
CHECK_NEURONS_CYPHER = "MATCH (n:Neuron) RETURN n.run AS run, n.level AS level, n.layer AS layer, count(*) AS n"
CHECK_SYNAPSES_CYPHER = (
    "MATCH (a:Neuron)-[s:SYNAPSE]->(b:Neuron) RETURN a.run AS run, a.level AS level, a.layer AS layer, "
    "b.run = a.run AND b.level = a.level AND b.layer = a.layer + 1 AS between, count(s) AS n"
)
EMPTY_RUNS_CYPHER = "MATCH (r:Run) WHERE NOT EXISTS { (r)-[:HAS_CHECKPOINT]->() } RETURN r.name AS run"
LINK_CHECKPOINT_CYPHER = (
    "MATCH (c:Checkpoint {run: $run, level: $level}) MERGE (r:Run {name: $run}) MERGE (r)-[:HAS_CHECKPOINT]->(c)"
)
DELETE_STRAY_SYNAPSES_CYPHER = (
    "MATCH (a:Neuron)-[s:SYNAPSE]->(b:Neuron) WHERE b.run <> a.run OR b.level <> a.level OR b.layer <> a.layer + 1 "
    "WITH s LIMIT $batch DELETE s RETURN count(*) AS deleted"
)

# -- write-back (``{name}``: a property name accepted by check_property_name) --------------------------
SET_NEURON_PROPERTY_CYPHER = (
    "UNWIND range(0, size($values) - 1) AS i "
    "MATCH (n:Neuron {run: $run, level: $level, layer: $layer, `index`: $start + i}) "
    "SET n.`{name}` = $values[i]"
)
CLEAR_SYNAPSE_FLAG_CYPHER = (
    "MATCH (:Neuron {run: $run, level: $level, layer: $layer})-[s:SYNAPSE]->() SET s.`{name}` = false"
)
SET_SYNAPSE_FLAG_CYPHER = (
    "UNWIND range(0, size($src) - 1) AS i "
    "MATCH (:Neuron {run: $run, level: $level, layer: $layer, `index`: $src[i]})"
    "-[s:SYNAPSE]->(:Neuron {run: $run, level: $level, layer: $layer + 1, `index`: $dst[i]}) "
    "SET s.`{name}` = true"
)

_CHECKPOINT_PROPERTIES = frozenset(
    {"id", "run", "level", "neurons", "edges", "sparsity", "layer_names", "widths", "input_shape", "layers", "incomplete",
     "written", "layer_synapses", "architecture_source", *CURVE_PROPERTIES}
)
_RUN_PROPERTIES = frozenset({"name", "run", "activation"})
_NEURON_PROPERTIES = frozenset({"id", "run", "level", "layer", "index", "channel", "y", "x", "bias"})
_SYNAPSE_PROPERTIES = frozenset({"w"})


def statements() -> dict[str, str]:
    """Every Cypher statement this module sends, by constant name (templates filled with a sample name)."""
    found = {}
    for key, value in globals().items():
        if key.endswith("_CYPHER"):
            for i, text in enumerate(value if isinstance(value, tuple) else (value,)):
                found[f"{key}[{i}]" if isinstance(value, tuple) else key] = text.replace("{name}", "sample_property")
    return found


class Neo4jStore(Store):
    """An archive in one database of a Neo4j 5 server (see the module docstring)."""

    def __init__(
        self,
        uri: str,
        *,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        read_only: bool = False,
        single_transaction: int = SINGLE_TRANSACTION,
        batch: int = SYNAPSE_BATCH,
    ):
        import neo4j

        # The driver logs connection failures as warnings; they reach the user as one StoreError line.
        logging.getLogger("neo4j").addHandler(logging.NullHandler())
        self.uri = uri
        self.database = database or os.environ.get("NEO4J_DATABASE") or DEFAULT_DATABASE
        self.location = uri if self.database == DEFAULT_DATABASE else f"{uri} (database {self.database})"
        self.read_only = read_only
        self.single_transaction = single_transaction
        self.batch = batch
        self._schema_ready = False
        user = user or os.environ.get("NEO4J_USERNAME") or "neo4j"
        password = password if password is not None else os.environ.get("NEO4J_PASSWORD")
        auth = (user, password) if password is not None else None
        try:
            self._driver = neo4j.GraphDatabase.driver(uri, auth=auth, user_agent="netarchive")
        except (ValueError, neo4j.exceptions.ConfigurationError) as error:
            raise StoreError(f"cannot use {uri} as a Neo4j address: {error}") from None
        try:
            self._check_server(user)
        except BaseException:
            self._driver.close()
            raise

    # -- opening -------------------------------------------------------------------------------
    def _check_server(self, user: str) -> None:
        from neo4j import exceptions as ex

        try:
            with self._driver.session(database=self.database, default_access_mode="READ") as session:
                rows = session.run(COMPONENTS_CYPHER).data()
        except ex.AuthError:
            raise StoreError(
                f"the Neo4j server at {self.uri} refused the credentials of user {user!r} "
                "(set NEO4J_USERNAME/NEO4J_PASSWORD or --user/--password)"
            ) from None
        except ex.ServiceUnavailable as error:
            raise StoreError(
                f"cannot reach a Neo4j server at {self.uri}: {_first_line(error)} (is it running? "
                "`bash tools/neo4j/start.sh DIR` or `docker compose -f docker/compose.yml up -d` starts one)"
            ) from None
        except ex.Neo4jError as error:
            if "DatabaseNotFound" in str(error.code) or "does not exist" in str(error.message):
                raise StoreError(
                    f"the Neo4j server at {self.uri} has no database {self.database!r} "
                    f"(create it with `CREATE DATABASE {self.database}` or pick another with --database)"
                ) from None
            raise StoreError(f"the Neo4j server at {self.uri} refused the connection: {_first_line(error)}") from None
        except ex.DriverError as error:
            raise StoreError(f"cannot talk to the Neo4j server at {self.uri}: {_first_line(error)}") from None
        version = next((row["versions"][0] for row in rows if row["name"] == "Neo4j Kernel"), None)
        major = _major(version)
        if major is None or major < MIN_SERVER_MAJOR:
            raise StoreError(
                f"the server at {self.uri} runs Neo4j {version or 'of an unknown version'}; netarchive needs "
                f"Neo4j {MIN_SERVER_MAJOR} or later (docker/compose.yml runs 5.26)"
            )
        self.server_version = version

    @property
    def backend(self) -> str:
        return f"Neo4j {self.server_version}"

    def close(self) -> None:
        if getattr(self, "_driver", None) is not None:
            self._driver.close()
            self._driver = None

    # -- statements ----------------------------------------------------------------------------
    @contextmanager
    def _session(self, access: str = "WRITE") -> Iterator:
        from neo4j import exceptions as ex

        try:
            with self._driver.session(database=self.database, default_access_mode=access) as session:
                yield session
        except ex.Neo4jError as error:
            if "Memory" in str(error.code):  # MemoryPoolOutOfMemoryError, TransactionOutOfMemoryError
                raise StoreError(
                    f"the Neo4j server at {self.uri} ran out of transaction memory ({_first_line(error)}); nothing "
                    "of this transaction was written: raise db.memory.transaction.total.max (docker/.env "
                    "NEO4J_TRANSACTION_MEMORY) or db.memory.transaction.max"
                ) from None
            raise StoreError(_first_line(error)) from None
        except ex.DriverError as error:
            raise StoreError(
                f"lost the Neo4j server at {self.uri}: {_first_line(error)} (a transaction it had not committed "
                "was not written)"
            ) from None

    def _read(self, query: str, **params) -> list[dict]:
        with self._session("READ") as session:
            return session.execute_read(lambda tx: tx.run(query, params).data())

    def _write(self, query: str, **params) -> list[dict]:
        return self._transaction([(query, params)])

    def _transaction(self, statements) -> list[dict]:
        """Run ``(text, params)`` statements in one explicit write transaction; the rows of the last.

        Not the driver's managed transactions: those retry transient errors for up to 30 s, which would
        send a write that hit the server's memory limit again and again, and hold a command for half a
        minute after the server died. A write either commits once or fails at once."""
        rows: list[dict] = []
        with self._session() as session, session.begin_transaction() as tx:
            for text, params in statements:
                rows = tx.run(text, params).data()
            tx.commit()
        return rows

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"the archive at {self.location} is open read-only")

    def init(self) -> None:
        """Create the constraints and indexes (idempotent) and wait until they are online."""
        self._writable()
        with self._session() as session:
            for statement in SCHEMA_CYPHER:
                session.run(statement).consume()
            session.run(AWAIT_INDEXES_CYPHER, seconds=300).consume()
        self._schema_ready = True

    # -- writing -------------------------------------------------------------------------------
    def write(self, checkpoint: Checkpoint, *, replace: bool = False, progress: Progress | None = None) -> None:
        step = progress or (lambda _: None)
        self._writable()
        check_storable(checkpoint)
        if not self._schema_ready:
            self.init()
        self._clean_incomplete(step)
        run, level = checkpoint.run, checkpoint.level
        self._check_names(checkpoint)
        existing = self._read(CHECKPOINT_EDGES_CYPHER, run=run, level=level)
        if existing and not replace:
            raise AlreadyArchived(f"run {run!r} level {level} is already archived (use --replace to overwrite it)")
        old_edges = int(existing[0]["edges"] or 0) if existing else 0
        if checkpoint.edges + old_edges <= self.single_transaction:
            self._transaction(self._whole_statements(checkpoint, bool(existing), step))
            return
        if existing:
            step("removing the old checkpoint")
            self._delete_batched(run, [level], step)
        try:
            self._write_batched(checkpoint, step)
        except BaseException:
            step("removing the unfinished checkpoint")
            try:
                self._delete_batched(run, [level], step)
            except Exception:  # noqa: BLE001 - the next write cleans up what is left
                pass
            raise

    def _check_names(self, checkpoint: Checkpoint) -> None:
        for key in checkpoint.meta:
            check_property_name(key, _RUN_PROPERTIES, "meta key")
        for key in checkpoint.metrics:
            check_property_name(key, _CHECKPOINT_PROPERTIES, "metric")

    def _whole_statements(self, checkpoint: Checkpoint, replace: bool, step: Progress):
        """The whole checkpoint, after the removal of the old one, for one transaction."""
        if replace:
            step("removing the old checkpoint")
            keys = {"run": checkpoint.run, "level": checkpoint.level}
            yield DELETE_NEURONS_CYPHER, keys
            yield DELETE_CHECKPOINT_CYPHER, keys
        yield from _checkpoint_statements(checkpoint, incomplete=False, batch=self.batch, step=step)
        step("commit")

    def _write_batched(self, checkpoint: Checkpoint, step: Progress) -> None:
        statements = _checkpoint_statements(checkpoint, incomplete=True, batch=self.batch, step=step)
        head = [next(statements) for _ in range(len(checkpoint.widths) + 1)]  # checkpoint + neurons
        self._transaction(head)
        for statement in statements:
            self._transaction([statement])
        step("commit")
        self._write(COMPLETE_CHECKPOINT_CYPHER, run=checkpoint.run, level=checkpoint.level)

    def _clean_incomplete(self, step: Progress) -> None:
        for row in self._read(INCOMPLETE_CYPHER):
            step(f"removing the unfinished checkpoint {row['run']}/{row['level']}")
            self._delete_batched(row["run"], [row["level"]], step)

    def unfinished(self) -> pd.DataFrame:
        return pd.DataFrame(self._read(INCOMPLETE_CYPHER), columns=["run", "level"]).sort_values(["run", "level"], ignore_index=True)

    # -- reading -------------------------------------------------------------------------------
    def checkpoints(self, run: str | None = None) -> pd.DataFrame:
        rows = [row["c"] for row in self._read(CHECKPOINTS_CYPHER, run=run)]
        table = pd.DataFrame(rows)
        if table.empty:
            return pd.DataFrame(columns=list(CHECKPOINT_FIELDS))
        table["layers"] = [len(names) for names in table["layer_names"]]
        if "architecture_source" not in table:
            table["architecture_source"] = OLD_ARCHITECTURE_SOURCE
        table["architecture_source"] = table["architecture_source"].fillna(OLD_ARCHITECTURE_SOURCE)
        metrics = sorted(column for column in table.columns if column not in _CHECKPOINT_PROPERTIES)
        return table[list(CHECKPOINT_FIELDS) + metrics].reset_index(drop=True)

    def runs(self) -> pd.DataFrame:
        rows = [{**row["r"], "run": row["name"]} for row in self._read(RUNS_CYPHER)]
        table = pd.DataFrame(rows, columns=None if rows else ["run", "activation"])
        table = table.drop(columns=["name"], errors="ignore")
        return table[["run", *(column for column in table.columns if column != "run")]].reset_index(drop=True)

    def curves(self, runs: list[str] | None = None) -> pd.DataFrame:
        rows = self._read(CURVES_CYPHER, runs=None if runs is None else list(runs))
        return curve_table([(row["run"], row["level"], row["metric"], row["iteration"], row["value"]) for row in rows])

    def versions(self) -> dict[tuple[str, int], str]:
        return {(row["run"], int(row["level"])): row["written"] for row in self._read(VERSIONS_CYPHER)}

    @property
    def cache_dir(self) -> Path:
        """Under the user's cache directory, one folder per server and database."""
        home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        server = hashlib.sha1(f"{self.uri}|{self.database}".encode()).hexdigest()[:16]
        return home / "netarchive" / server

    def read(self, run: str, level: int) -> Checkpoint:
        """The checkpoint, verified against its recorded counts. Neo4j reads at read-committed isolation,
        so a read that overlapped a write of the same checkpoint is done again (once) before a mismatch
        is called damage."""
        try:
            return self._read_checkpoint(run, int(level))
        except DamagedArchive:
            return self._read_checkpoint(run, int(level))

    def _read_checkpoint(self, run: str, level: int) -> Checkpoint:
        found = self._read(CHECKPOINT_CYPHER, run=run, level=level)
        if not found:
            raise self.not_found(run, level)
        meta, props = found[0]["r"], found[0]["c"]
        widths = [int(w) for w in props["widths"]]
        biases = self._biases(run, level, widths)
        read = []
        with self._session("READ") as session:
            for l in range(len(widths) - 1):
                read.append(session.execute_read(_read_layer, run, level, l))
        counts = [len(src) for src, _, _ in read]
        neurons = self._read(COUNT_NEURONS_CYPHER, run=run, level=level)[0]["neurons"]
        verify_counts(
            {"neurons": props["neurons"], "edges": props["edges"], "layer_synapses": props.get("layer_synapses")},
            {"neurons": neurons, "edges": sum(counts), "layer_synapses": counts},
            run, level,
        )
        layers = [Layer(name, widths[l], widths[l + 1], *read[l], biases[l + 1]) for l, name in enumerate(props["layer_names"])]
        metrics = {key: float(value) for key, value in props.items() if key not in _CHECKPOINT_PROPERTIES}
        meta = {key: value for key, value in meta.items() if key != "name"}
        activation = meta.pop("activation", None) or "relu"
        curves = curves_from_properties(*(props.get(name) for name in CURVE_PROPERTIES))
        return Checkpoint(run, int(level), tuple(layers), props.get("input_shape") or None, metrics, meta, activation,
                          architecture_source=props.get("architecture_source") or OLD_ARCHITECTURE_SOURCE, curves=curves)

    def _biases(self, run: str, level: int, widths: list[int]) -> list[np.ndarray | None]:
        """The biases of each layer's neurons (None for a layer without any; missing ones are 0)."""
        biases: list[np.ndarray | None] = [None] * len(widths)
        for row in self._read(BIASES_CYPHER, run=run, level=level):
            layer = int(row["layer"])
            if biases[layer] is None:
                biases[layer] = np.zeros(widths[layer], dtype=np.float32)
            biases[layer][int(row["i"])] = row["bias"]
        return biases

    def cypher(self, query: str, params: Mapping[str, object] | None = None) -> pd.DataFrame:
        def work(tx):
            result = tx.run(query, dict(params or {}))
            keys = list(result.keys())
            return pd.DataFrame([[_plain(value) for value in record.values()] for record in result], columns=keys)

        from neo4j import exceptions as ex

        with self._session("READ") as session:
            try:
                return session.execute_read(work)
            except ex.ClientError as error:
                if error.code == "Neo.ClientError.Statement.AccessMode":  # "Writing in read access mode not allowed"
                    raise StoreError(READ_ONLY_MESSAGE) from None
                raise

    # -- deleting ------------------------------------------------------------------------------
    def delete(self, run: str, level: int | None = None) -> int:
        self._writable()
        levels = self._visible_levels(run, level)
        if not levels:
            raise self.not_found(run, level)
        self._write(MARK_INCOMPLETE_CYPHER, run=run, level=level)  # gone for readers from here on
        self._delete_batched(run, levels, lambda _: None)
        return len(levels)

    def _visible_levels(self, run: str, level: int | None) -> list[int]:
        table = self.checkpoints(run)
        levels = [int(each) for each in table["level"]] if not table.empty else []
        return [each for each in levels if level is None or each == level]

    def _delete_batched(self, run: str, levels: list[int], step: Progress) -> None:
        """Delete checkpoints in transactions of at most ``batch`` rows, marking them incomplete first."""
        for level in levels:
            self._write(MARK_INCOMPLETE_CYPHER, run=run, level=level)
            for statement in (DELETE_SYNAPSES_BATCH_CYPHER, DELETE_NEURONS_BATCH_CYPHER):
                while self._write(statement, run=run, level=level, batch=self.batch)[0]["deleted"]:
                    pass
            self._write(DELETE_CHECKPOINT_CYPHER, run=run, level=level)
        self._write(DELETE_EMPTY_RUN_CYPHER, run=run)

    # -- write-back ----------------------------------------------------------------------------
    def set_neuron_properties(self, run: str, level: int, properties: Mapping[str, np.ndarray]) -> None:
        self._writable()
        props = self._checkpoint_properties(run, level)
        offsets = np.concatenate([[0], np.cumsum(props["widths"])])
        statements = []
        for name, values in properties.items():
            check_property_name(name, _NEURON_PROPERTIES, "neuron property")
            values = np.asarray(values)
            if values.shape != (offsets[-1],):
                raise StoreError(f"neuron property {name!r} has {values.size} values for {offsets[-1]} neurons")
            if values.dtype.kind not in "biufU":
                raise StoreError(f"cannot store neuron property {name!r} of type {values.dtype}")
            text = SET_NEURON_PROPERTY_CYPHER.replace("{name}", name)
            for layer in range(len(offsets) - 1):
                for start in range(0, int(offsets[layer + 1] - offsets[layer]), self.batch):
                    chunk = values[offsets[layer] + start : min(offsets[layer] + start + self.batch, offsets[layer + 1])]
                    statements.append((text, {"run": run, "level": int(level), "layer": layer, "start": start, "values": chunk.tolist()}))
        self._transaction(statements)

    def set_metrics(self, run: str, level: int, metrics: Mapping[str, float]) -> None:
        self._writable()
        for key in metrics:
            check_property_name(key, _CHECKPOINT_PROPERTIES, "metric")
        values = {key: float(value) for key, value in metrics.items()}
        if not self._write(SET_METRICS_CYPHER, run=run, level=int(level), metrics=values):
            raise self.not_found(run, level)

    def set_activation(self, run: str, activation: str) -> None:
        self._writable()
        if activation not in ACTIVATIONS:
            raise InputError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        if not self._write(SET_ACTIVATION_CYPHER, run=run, activation=activation):
            raise self.not_found(run)

    def set_input_shape(self, run: str, shape: tuple[int, int, int], level: int | None = None) -> None:
        self._writable()
        shape = tuple(int(s) for s in shape)
        table = self.checkpoints(run)
        rows = [] if table.empty else [int(each) for each in table["level"] if level is None or int(each) == level]
        if not rows:
            raise self.not_found(run, level)
        inputs = {each: int(self._checkpoint_properties(run, each)["widths"][0]) for each in rows}
        pixels = check_input_shape(run, shape, inputs)
        channel, y, x = (axis.tolist() for axis in np.unravel_index(np.arange(pixels), shape))
        statements = []
        for each in rows:
            statements.append((SET_INPUT_SHAPE_CYPHER, {"run": run, "level": each, "shape": list(shape)}))
            statements.append((SET_PIXELS_CYPHER, {"run": run, "level": each, "channel": channel, "y": y, "x": x}))
        self._transaction(statements)

    def set_synapse_flag(self, run: str, level: int, name: str, layer: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
        self._writable()
        check_property_name(name, _SYNAPSE_PROPERTIES, "synapse flag")
        props = self._checkpoint_properties(run, level)
        layer, src, dst = (np.asarray(a, dtype=np.int64) for a in (layer, src, dst))
        keys = {"run": run, "level": int(level)}
        statements = []
        for l in range(len(props["layer_names"])):
            statements.append((CLEAR_SYNAPSE_FLAG_CYPHER.replace("{name}", name), {**keys, "layer": l}))
            chosen = layer == l
            for start in range(0, int(chosen.sum()), self.batch):
                part = slice(start, start + self.batch)
                statements.append((
                    SET_SYNAPSE_FLAG_CYPHER.replace("{name}", name),
                    {**keys, "layer": l, "src": src[chosen][part].tolist(), "dst": dst[chosen][part].tolist()},
                ))
        self._transaction(statements)

    def _checkpoint_properties(self, run: str, level: int) -> dict:
        found = self._read(CHECKPOINT_CYPHER, run=run, level=int(level))
        if not found:
            raise self.not_found(run, level)
        return found[0]["c"]

    def not_found(self, run: str, level: int | None = None) -> NotFound:
        """The error for a (run, level) that no complete checkpoint has: left unfinished, or unknown (saying
        what exists)."""
        if level is not None and self._read(UNFINISHED_CYPHER, run=run, level=int(level)):
            return NotFound.unfinished(run, level)
        return super().not_found(run, level)

    # -- checking ------------------------------------------------------------------------------
    def check(self, repair: bool = False) -> pd.DataFrame:
        """Unfinished and damaged checkpoints, checkpoints no run links to, neurons of no checkpoint,
        synapses that join the wrong neurons, runs without checkpoints, and missing constraints."""
        if repair:
            self._writable()
        return problem_table(self._schema_problems() + self._checkpoint_problems(), repair)

    def _schema_problems(self) -> list[Problem]:
        from neo4j import exceptions as ex

        try:
            names = {row["name"] for query in (CONSTRAINTS_CYPHER, INDEXES_CYPHER) for row in self._read(query)}
        except (StoreError, ex.Neo4jError):
            return []  # a Bolt server that is not Neo4j (ArcadeDB in the tests) has no SHOW commands
        missing = [name for name in SCHEMA_NAMES if name not in names]
        if not missing:
            return []
        return [Problem("schema", f"the constraints or indexes {', '.join(missing)} are missing", "create them", self.init)]

    def _checkpoint_problems(self) -> list[Problem]:
        neurons, synapses, stray = {}, {}, 0
        for row in self._read(CHECK_NEURONS_CYPHER):
            neurons[row["run"], row["level"], row["layer"]] = row["n"]
        for row in self._read(CHECK_SYNAPSES_CYPHER):
            if row["between"]:
                synapses[row["run"], row["level"], row["layer"]] = row["n"]
            else:
                stray += row["n"]
        problems, known = [], set()
        for row in self._read(CHECK_CHECKPOINTS_CYPHER):
            run, level = row["run"], row["level"]
            known.add((run, level))
            remove = (lambda run=run, level=level: self._delete_batched(run, [level], lambda _: None))
            if row["incomplete"]:
                problems.append(unfinished_problem(run, level, remove))
                continue
            widths = [int(w) for w in row["widths"]]
            found = [neurons.get((run, level, layer), 0) for layer in range(len(widths))]
            counts = [synapses.get((run, level, layer), 0) for layer in range(len(widths) - 1)]
            wrong = layer_mismatches(widths, found, counts, row["layer_synapses"] or [row["edges"]])
            if wrong:
                problems.append(damaged_problem(run, level, wrong, remove))
            elif row["linked"] is None:
                problems.append(Problem(
                    "unlinked-checkpoint", "its run does not link to it", "link it",
                    lambda run=run, level=level: self._write(LINK_CHECKPOINT_CYPHER, run=run, level=level), run, level,
                ))
        for run, level in sorted({(run, level) for run, level, _ in neurons} - known):
            problems.append(Problem(
                "orphan-neurons", "neurons (and their synapses) of no checkpoint", "delete them",
                lambda run=run, level=level: self._delete_batched(run, [level], lambda _: None), run, level,
            ))
        if stray:
            def delete_stray():
                while self._write(DELETE_STRAY_SYNAPSES_CYPHER, batch=self.batch)[0]["deleted"]:
                    pass

            problems.append(Problem(
                "stray-synapses", f"{stray:,} synapses join neurons of different checkpoints or of layers that are "
                "not consecutive", "delete them", delete_stray,
            ))
        for row in self._read(EMPTY_RUNS_CYPHER):
            problems.append(Problem("empty-run", "a run without checkpoints", "delete it",
                                    lambda run=row["run"]: self._write(DELETE_EMPTY_RUN_CYPHER, run=run), row["run"]))
        return problems


def _checkpoint_statements(checkpoint: Checkpoint, *, incomplete: bool, batch: int, step: Progress):
    """The statements that create a checkpoint: the Checkpoint node, the neurons of each layer, then the
    synapse batches (parameters built lazily, so a batched write holds one batch at a time)."""
    keys = {"run": checkpoint.run, "level": int(checkpoint.level)}
    properties = {
        **recorded_counts(checkpoint),
        "edges": checkpoint.edges,
        "sparsity": float(checkpoint.sparsity),
        "layer_names": list(checkpoint.layer_names),
        "widths": [int(w) for w in checkpoint.widths],
        "written": uuid.uuid4().hex,
        "architecture_source": checkpoint.architecture_source,
    }
    if checkpoint.input_shape is not None:
        properties["input_shape"] = [int(s) for s in checkpoint.input_shape]
    properties.update(curve_properties(checkpoint))
    if incomplete:
        properties["incomplete"] = True
    step("checkpoint")
    yield CREATE_CHECKPOINT_CYPHER, {
        **keys,
        "meta": {key: str(value) for key, value in checkpoint.meta.items()},
        "activation": checkpoint.activation,
        "properties": properties,
        "metrics": {key: float(value) for key, value in checkpoint.metrics.items()},
    }
    step("neurons")
    coordinates = checkpoint.input_coordinates()
    for layer, width in enumerate(checkpoint.widths):
        if layer == 0 and coordinates is not None:
            channel, y, x = (axis.tolist() for axis in coordinates)
            yield CREATE_PIXELS_CYPHER, {**keys, "width": int(width), "channel": channel, "y": y, "x": x}
        else:
            bias = checkpoint.layers[layer - 1].bias if layer else None
            bias = None if bias is None else bias.astype(np.float64).tolist()
            yield CREATE_NEURONS_CYPHER, {**keys, "layer": layer, "width": int(width), "bias": bias}
    step(f"{checkpoint.edges:,} synapses")
    for layer, batches in enumerate(synapse_batches_by_layer(checkpoint, batch)):
        for rows in batches:
            yield CREATE_SYNAPSES_CYPHER, {**keys, "layer": layer, **rows}


def synapse_batches_by_layer(checkpoint: Checkpoint, batch: int):
    """Per layer, a lazy sequence of batches of at most ``batch`` synapses, grouped by target neuron.

    A batch is ``{"targets", "bounds", "src", "w"}``: the synapses into ``targets[j]`` are
    ``src[bounds[j]:bounds[j+1]]`` with weights ``w[...]`` (parallel lists, sorted by target), so the
    server finds each target neuron once per batch instead of once per synapse, and the client encodes
    two values per synapse instead of three. Lists of Python ints and floats are what the driver's Rust
    extension encodes fastest; this is the whole client-side cost of an ingest besides the network
    (bench/bench_neo4j.py measures it).
    """
    for layer in checkpoint.layers:
        yield _layer_batches(layer, batch)


def _layer_batches(layer: Layer, batch: int):
    src, dst, w = layer.src, layer.dst, layer.w
    if len(dst) > 1 and (np.diff(dst) < 0).any():  # from_dense and the loaders give target order already
        order = np.argsort(dst, kind="stable")
        src, dst, w = src[order], dst[order], w[order]
    for start in range(0, len(dst), batch):
        targets = dst[start : start + batch]
        bounds = np.concatenate([[0], np.flatnonzero(np.diff(targets)) + 1, [len(targets)]])
        yield {
            "targets": targets[bounds[:-1]].tolist(),
            "bounds": bounds.tolist(),
            "src": src[start : start + batch].tolist(),
            "w": w[start : start + batch].astype(np.float64).tolist(),
        }


def _read_layer(tx, run: str, level: int, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One layer's synapses, one record per source neuron (lists of targets and weights) into numpy."""
    sources, targets, weights = [], [], []
    for record in tx.run(READ_LAYER_CYPHER, run=run, level=level, layer=layer):
        dst = record["dst"]
        sources.append(np.full(len(dst), record["src"], dtype=np.int32))
        targets.append(np.asarray(dst, dtype=np.int32))
        weights.append(np.asarray(record["w"], dtype=np.float32))
    if not sources:
        return (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32))
    return np.concatenate(sources), np.concatenate(targets), np.concatenate(weights)


def _plain(value):
    """Graph values of a query result as plain Python, in the form of ``Store.cypher``."""
    from neo4j.graph import Node, Path, Relationship

    if isinstance(value, Node):
        return {"_label": ":".join(sorted(value.labels)), **dict(value)}
    if isinstance(value, Relationship):
        return {"_type": value.type, **dict(value)}
    if isinstance(value, Path):
        items = [_plain(value.start_node)]
        for relationship, node in zip(value.relationships, value.nodes[1:]):
            items += [_plain(relationship), _plain(node)]
        return {"_path": items}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _major(version: str | None) -> int | None:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return None


def _first_line(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error)
    text = str(message).strip()
    return text.splitlines()[0] if text else type(error).__name__
