"""The server archive: the same schema on a Neo4j 5 server, over Bolt with the official driver.

Schema (cypher/schema.md): ``(:Run {name, activation, ...meta})-[:HAS_CHECKPOINT]->(:Checkpoint {run, level,
neurons, edges, sparsity, layer_names, widths, input_shape, architecture_source, architecture, layer_synapses,
connections, ...metrics})``, ``(:Neuron {run, level, group, index, channel, y, x, bias, bn_weight, bn_bias, bn_mean,
bn_var})-[:SYNAPSE {w, layer, ky, kx}]->(:Neuron)`` (one per kernel weight; ky/kx absent on Linear synapses) and
``(:Neuron)-[:CONNECTION {kind}]->(:Neuron)`` for the weightless edges of add, concat and flatten. Neurons
are keyed by a composite uniqueness constraint on ``(run, level, group, index)`` (Community edition has no
NODE KEY); a synapse batch collects its two groups' neurons once and finds each by position; checkpoints by ``(run, level)``.
``init`` upgrades an archive written before issue 14 (``Neuron.layer`` -> ``group``, ``SYNAPSE.layer``
filled in; :data:`UPGRADE_CYPHER`).

Writing. Neurons go in with one ``UNWIND range(...)`` statement per layer; synapses in batches of
:data:`SYNAPSE_BATCH` rows sent as parallel lists (``$src``, ``$dst``, ``$w``), one layer at a time. Each
statement collects the two layers' neurons once (one index seek per layer, ordered by ``index``) and
finds a synapse's neurons by list position, so a row costs one relationship and no index seek (2-4x
faster than two composite-index seeks per row; bench/neo4j.md). A checkpoint of at most
``single_transaction`` synapses (old one included when replacing) is written in one transaction. A larger
one would need gigabytes of transaction state, so it is written in one transaction per batch (:data:`SESSIONS`
batches at once; one the server rolls back as deadlocked is sent again) while its
Checkpoint node carries ``incomplete: true``: every read skips such checkpoints, the final transaction
removes the mark, a failed write deletes what it wrote, and whatever a killed process left is deleted at
the start of the next write. Every write is an explicit transaction that the driver does not retry
(:meth:`Neo4jStore._transaction`). Reading: one statement per weight layer (:data:`READ_LAYER_CYPHER`). ``rm`` marks the checkpoint incomplete first, then deletes in batches, so it
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
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from netarchive.errors import AlreadyArchived, DamagedArchive, InputError, NotFound, StoreError, first_line
from netarchive.model import ACTIVATIONS, Checkpoint, Layer
from netarchive.model.columns import (
    NEURON_VALUES, architecture_json, assemble, layer_groups, neuron_columns, parse_architecture, split_synapses,
    with_input_shape,
)
from netarchive.store.base import (
    CHECKPOINT_FIELDS, CHECKPOINT_PROPERTIES, CURVE_PROPERTIES, NEURON_PROPERTIES, OLD_ARCHITECTURE_SOURCE,
    READ_ONLY_MESSAGE, RUN_PROPERTIES, SYNAPSE_PROPERTIES, Problem, Progress, Store, check_input_shape,
    check_property_name, curve_properties, curve_table, curves_from_properties, damaged_problem, flagged_synapses,
    layer_mismatches, problem_table, recorded_counts, unfinished_problem, verify_counts,
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
SESSIONS = 2
"""Sessions that write the synapse batches of a batched checkpoint at once. The server runs a transaction
on one thread at about 13 us of CPU per synapse (bench/neo4j.md); a second session lets it use a second core."""
DEFAULT_DATABASE = "neo4j"
MIN_SERVER_MAJOR = 5

# -- schema ------------------------------------------------------------------------------------------
SCHEMA_CYPHER = (
    "CREATE CONSTRAINT run_name IF NOT EXISTS FOR (r:Run) REQUIRE r.name IS UNIQUE",
    "CREATE CONSTRAINT checkpoint_key IF NOT EXISTS FOR (c:Checkpoint) REQUIRE (c.run, c.level) IS UNIQUE",
    "CREATE CONSTRAINT neuron_group_key IF NOT EXISTS FOR (n:Neuron) REQUIRE (n.run, n.level, n.`group`, n.`index`) IS UNIQUE",
    "CREATE INDEX neuron_group IF NOT EXISTS FOR (n:Neuron) ON (n.run, n.level, n.`group`)",
    "CREATE INDEX neuron_checkpoint IF NOT EXISTS FOR (n:Neuron) ON (n.run, n.level)",
)
OLD_SCHEMA_NAMES = ("neuron_key", "neuron_layer")
"""The constraint and index on ``Neuron.layer`` of archives written before issue 14: dropped by the upgrade,
last, so that an interrupted upgrade is done again by the next ``init``."""
UPGRADE_CYPHER = (
    "MATCH (n:Neuron {run: $run, level: $level}) WHERE n.layer IS NOT NULL "
    "WITH n LIMIT $batch SET n.`group` = n.layer REMOVE n.layer RETURN count(*) AS changed",
    "MATCH (a:Neuron {run: $run, level: $level})-[s:SYNAPSE]->() WHERE s.layer IS NULL "
    "WITH a, s LIMIT $batch SET s.layer = a.`group` RETURN count(*) AS changed",
)
"""Upgrading one checkpoint, batch by batch: the neuron group was called ``layer``, and a synapse of those
chains belongs to the weight layer numbered as its source group."""
UPGRADE_CHECKPOINTS_CYPHER = "MATCH (c:Checkpoint) RETURN c.run AS run, c.level AS level"
DROP_OLD_SCHEMA_CYPHER = ("DROP CONSTRAINT neuron_key IF EXISTS", "DROP INDEX neuron_layer IF EXISTS")
AWAIT_INDEXES_CYPHER = "CALL db.awaitIndexes($seconds)"
COMPONENTS_CYPHER = "CALL dbms.components() YIELD name, versions, edition RETURN name, versions, edition"
CONSTRAINTS_CYPHER = "SHOW CONSTRAINTS YIELD name RETURN name"
INDEXES_CYPHER = "SHOW INDEXES YIELD name RETURN name"
SCHEMA_NAMES = ("run_name", "checkpoint_key", "neuron_group_key", "neuron_group", "neuron_checkpoint")

# -- writing -----------------------------------------------------------------------------------------
CREATE_CHECKPOINT_CYPHER = (
    "MERGE (r:Run {name: $run}) SET r += $meta, r.activation = $activation "
    "CREATE (r)-[:HAS_CHECKPOINT]->(c:Checkpoint {run: $run, level: $level}) "
    "SET c += $properties, c += $metrics"
)
CREATE_NEURONS_CYPHER = (
    "UNWIND range(0, $width - 1) AS i "
    "CREATE (:Neuron {run: $run, level: $level, `group`: $group, `index`: i, channel: $channel[i], y: $y[i], x: $x[i], "
    "bias: $bias[i], bn_weight: $bn_weight[i], bn_bias: $bn_bias[i], bn_mean: $bn_mean[i], bn_var: $bn_var[i]})"
)
"""The neurons of one group; a list given as null leaves its property out (``null[i]`` is null)."""
CREATE_SYNAPSES_CYPHER = (
    "MATCH (a:Neuron {run: $run, level: $level, `group`: $source}) WITH a ORDER BY a.`index` "
    "WITH collect(a) AS sources "
    "MATCH (b:Neuron {run: $run, level: $level, `group`: $target}) WITH sources, b ORDER BY b.`index` "
    "WITH sources, collect(b) AS targets "
    "UNWIND range(0, size($targets) - 1) AS j "
    "WITH sources, targets[$targets[j]] AS b, j "
    "UNWIND range($bounds[j], $bounds[j + 1] - 1) AS i "
    "WITH sources[$src[i]] AS a, b, i "
    "CREATE (a)-[:SYNAPSE {w: $w[i], layer: $layer, ky: $ky[i], kx: $kx[i]}]->(b)"
)
CREATE_CONNECTIONS_CYPHER = (
    "UNWIND range(0, size($src) - 1) AS i "
    "MATCH (a:Neuron {run: $run, level: $level, `group`: $source, `index`: $src[i]}) "
    "MATCH (b:Neuron {run: $run, level: $level, `group`: $target, `index`: $dst[i]}) "
    "CREATE (a)-[:CONNECTION {kind: $kind}]->(b)"
)
SET_METRICS_CYPHER = (
    "MATCH (c:Checkpoint {run: $run, level: $level}) WHERE c.incomplete IS NULL SET c += $metrics RETURN c.level AS level"
)
SET_ACTIVATION_CYPHER = "MATCH (r:Run {name: $run}) SET r.activation = $activation RETURN r.name AS name"
SET_INPUT_SHAPE_CYPHER = (
    "MATCH (c:Checkpoint {run: $run, level: $level}) SET c.input_shape = $shape, c.architecture = $architecture"
)
SET_PIXELS_CYPHER = (
    "UNWIND range(0, size($channel) - 1) AS i "
    "MATCH (n:Neuron {run: $run, level: $level, `group`: 0, `index`: i}) "
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
NEURON_VALUES_CYPHER = (
    "MATCH (n:Neuron {run: $run, level: $level}) "
    "WHERE n.bias IS NOT NULL OR n.bn_mean IS NOT NULL OR n.bn_var IS NOT NULL OR n.bn_weight IS NOT NULL OR n.bn_bias IS NOT NULL "
    "RETURN n.`group` AS group, n.`index` AS i, n.bias AS bias, n.bn_weight AS bn_weight, n.bn_bias AS bn_bias, "
    "n.bn_mean AS bn_mean, n.bn_var AS bn_var"
)
READ_LAYER_CYPHER = {
    (shared, conv): "MATCH (a:Neuron {run: $run, level: $level, `group`: $source})-[s:SYNAPSE"
    + (" {layer: $layer}" if shared else "") + "]->(b:Neuron) "
    "RETURN a.`index` AS src, collect(b.`index`) AS dst, collect(s.w) AS w"
    + (", collect(s.ky) AS ky, collect(s.kx) AS kx" if conv else "")
    for shared in (False, True) for conv in (False, True)
}
"""One weight layer's synapses by source neuron, keyed by (``shared``: its source group feeds other layers
too, so the layer is filtered on; ``conv``: its synapses have kernel offsets). Every property read costs
the server about 0.5 us per synapse (bench/neo4j.md), so a layer reads only what it can have; the read's
per-layer counts catch a synapse filed under the wrong layer."""
COUNT_CONNECTIONS_CYPHER = "MATCH (:Neuron {run: $run, level: $level})-[s:CONNECTION]->() RETURN count(s) AS connections"

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
    "c.layer_synapses AS layer_synapses, c.connections AS connections, c.layer_names AS layer_names, "
    "c.architecture AS architecture, r.name AS linked ORDER BY run, level"
)
CHECK_NEURONS_CYPHER = "MATCH (n:Neuron) RETURN n.run AS run, n.level AS level, n.`group` AS group, count(*) AS n"
CHECK_RELATIONSHIPS_CYPHER = {
    "SYNAPSE": (
        "MATCH (a:Neuron)-[s:SYNAPSE]->(b:Neuron) RETURN a.run AS run, a.level AS level, s.layer AS layer, "
        "a.`group` AS source, b.`group` AS target, b.run = a.run AND b.level = a.level AS same, count(s) AS n"
    ),
    "CONNECTION": (
        "MATCH (a:Neuron)-[s:CONNECTION]->(b:Neuron) RETURN a.run AS run, a.level AS level, 0 AS layer, "
        "a.`group` AS source, b.`group` AS target, b.run = a.run AND b.level = a.level AS same, count(s) AS n"
    ),
}
"""The rows of each relationship table between neurons by checkpoint, weight layer and both ends' groups."""
EMPTY_RUNS_CYPHER = "MATCH (r:Run) WHERE NOT EXISTS { (r)-[:HAS_CHECKPOINT]->() } RETURN r.name AS run"
LINK_CHECKPOINT_CYPHER = (
    "MATCH (c:Checkpoint {run: $run, level: $level}) MERGE (r:Run {name: $run}) MERGE (r)-[:HAS_CHECKPOINT]->(c)"
)
DELETE_FOREIGN_CYPHER = {
    table: f"MATCH (a:Neuron)-[s:{table}]->(b:Neuron) WHERE b.run <> a.run OR b.level <> a.level "
    "WITH s LIMIT $batch DELETE s RETURN count(*) AS deleted"
    for table in ("SYNAPSE", "CONNECTION")
}
DELETE_MISPLACED_SYNAPSES_CYPHER = (
    "MATCH (a:Neuron {run: $run, level: $level})-[s:SYNAPSE]->(b:Neuron {run: $run, level: $level}) "
    "WHERE s.layer IS NULL OR s.layer < 0 OR s.layer >= size($sources) "
    "OR a.`group` <> $sources[s.layer] OR b.`group` <> $targets[s.layer] "
    "WITH s LIMIT $batch DELETE s RETURN count(*) AS deleted"
)
"""Synapses that join neurons of different checkpoints, or not the source and target groups of their layer."""

# -- write-back (``{name}``: a property name accepted by check_property_name) --------------------------
SET_NEURON_PROPERTY_CYPHER = (
    "UNWIND range(0, size($values) - 1) AS i "
    "MATCH (n:Neuron {run: $run, level: $level, `group`: $group, `index`: $start + i}) "
    "SET n.`{name}` = $values[i]"
)
CLEAR_SYNAPSE_FLAG_CYPHER = (
    "MATCH (:Neuron {run: $run, level: $level, `group`: $source})-[s:SYNAPSE {layer: $layer}]->() SET s.`{name}` = false"
)
SET_SYNAPSE_FLAG_CYPHER = (
    "UNWIND range(0, size($src) - 1) AS i "
    "MATCH (:Neuron {run: $run, level: $level, `group`: $source, `index`: $src[i]})"
    "-[s:SYNAPSE {layer: $layer}]->(:Neuron {run: $run, level: $level, `group`: $target, `index`: $dst[i]}) "
    "WHERE coalesce(s.ky, -1) = $ky[i] AND coalesce(s.kx, -1) = $kx[i] "
    "SET s.`{name}` = true RETURN count(s) AS marked"
)


def statements() -> dict[str, str]:
    """Every Cypher statement this module sends, by constant name (templates filled with a sample name)."""
    found = {}
    for key, value in globals().items():
        if key.endswith("_CYPHER"):
            texts = value if isinstance(value, dict) else dict(enumerate(value)) if isinstance(value, tuple) else {None: value}
            for i, text in texts.items():
                found[key if i is None else f"{key}[{i}]"] = text.replace("{name}", "sample_property")
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
        sessions: int = SESSIONS,
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
        self.sessions = sessions
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

    def _transaction(self, statements, each=None) -> list[dict]:
        """Run ``(text, params)`` statements in one explicit write transaction; the rows of the last.
        ``each(rows, params)`` sees every statement's rows before the commit (an exception rolls back).

        Not the driver's managed transactions: those retry transient errors for up to 30 s, which would
        send a write that hit the server's memory limit again and again, and hold a command for half a
        minute after the server died. A write either commits once or fails at once."""
        rows: list[dict] = []
        with self._session() as session, session.begin_transaction() as tx:
            for text, params in statements:
                rows = tx.run(text, params).data()
                if each is not None:
                    each(rows, params)
            tx.commit()
        return rows

    def _batch_transaction(self, statement, attempts: int = 5) -> None:
        """One batch of a large write in its own transaction. Batches written at once may lock the same
        neurons (a neuron with fewer than 50 relationships is locked exclusively); the server then
        rolls one back as deadlocked, and that batch is sent again."""
        from neo4j import exceptions as ex

        for attempt in range(attempts):
            try:
                self._transaction([statement])
                return
            except ex.TransientError as error:
                if "DeadlockDetected" not in str(error.code) or attempt == attempts - 1:
                    raise

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"the archive at {self.location} is open read-only")

    def init(self) -> None:
        """Create the constraints and indexes (idempotent), wait until they are online, and upgrade an
        archive written before issue 14 (:data:`UPGRADE_CYPHER`)."""
        self._writable()
        with self._session() as session:
            for statement in SCHEMA_CYPHER:
                session.run(statement).consume()
            session.run(AWAIT_INDEXES_CYPHER, seconds=300).consume()
        if self._predates_groups():
            for row in self._read(UPGRADE_CHECKPOINTS_CYPHER):
                for statement in UPGRADE_CYPHER:
                    while self._write(statement, run=row["run"], level=row["level"], batch=self.batch)[0]["changed"]:
                        pass
            for statement in DROP_OLD_SCHEMA_CYPHER:
                self._write(statement)
        self._schema_ready = True

    def _predates_groups(self) -> bool:
        """Whether the archive still has the constraint or index of ``Neuron.layer`` (before issue 14)."""
        from neo4j import exceptions as ex

        try:
            names = {row["name"] for query in (CONSTRAINTS_CYPHER, INDEXES_CYPHER) for row in self._read(query)}
        except (StoreError, ex.Neo4jError):
            return False  # a Bolt server that is not Neo4j has no SHOW commands
        return bool(names.intersection(OLD_SCHEMA_NAMES))

    # -- writing -------------------------------------------------------------------------------
    def write(self, checkpoint: Checkpoint, *, replace: bool = False, progress: Progress | None = None) -> None:
        step = progress or (lambda _: None)
        self._writable()
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
            check_property_name(key, RUN_PROPERTIES, "meta key")
        for key in checkpoint.metrics:
            check_property_name(key, CHECKPOINT_PROPERTIES, "metric")

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
        head = [next(statements) for _ in range(len(checkpoint.widths) + 1)]  # checkpoint + neurons of each group
        self._transaction(head)
        with ThreadPoolExecutor(self.sessions) as pool:
            running = set()
            for statement in statements:  # built while the server works; at most two batches waiting per session
                running.add(pool.submit(self._batch_transaction, statement))
                if len(running) >= 2 * self.sessions:
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        future.result()
            for future in running:
                future.result()
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
        metrics = sorted(column for column in table.columns if column not in CHECKPOINT_PROPERTIES)
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
            try:
                return self._read_checkpoint(run, int(level))
            except DamagedArchive:
                if self._predates_groups():
                    raise StoreError(f"the archive at {self.location} was written by an older netarchive (neurons "
                                     "numbered by `layer`): `netarchive init` upgrades it") from None
                raise

    def _read_checkpoint(self, run: str, level: int) -> Checkpoint:
        found = self._read(CHECKPOINT_CYPHER, run=run, level=level)
        if not found:
            raise self.not_found(run, level)
        meta, props = found[0]["r"], found[0]["c"]
        widths, names = [int(w) for w in props["widths"]], props["layer_names"]
        architecture = parse_architecture(props.get("architecture"))
        sources, targets = layer_groups(architecture, len(names))
        offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
        convs = [bool(spec.get("conv")) for spec in architecture["layers"]] if architecture else [False] * len(names)

        read = []
        with self._session("READ") as session:  # one session: reading layers at once was slower (bench/neo4j.md)
            for l, (source, target) in enumerate(zip(sources, targets)):
                statement = READ_LAYER_CYPHER[sources.count(source) > 1, convs[l]]
                part = session.execute_read(_read_layer, statement, run, level, l, source)
                part["layer"] = np.full(len(part["w"]), l, dtype=np.int16)
                part["src"], part["dst"] = part["src"] + offsets[source], part["dst"] + offsets[target]
                read.append(part)
        counts = [len(part["w"]) for part in read]
        neurons = self._read(COUNT_NEURONS_CYPHER, run=run, level=level)[0]["neurons"]
        verify_counts(
            {"neurons": props["neurons"], "edges": props["edges"], "layer_synapses": props.get("layer_synapses"),
             "connections": props.get("connections")},
            {"neurons": neurons, "edges": sum(counts), "layer_synapses": counts,
             "connections": self._read(COUNT_CONNECTIONS_CYPHER, run=run, level=level)[0]["connections"]},
            run, level,
        )
        columns = {name: np.concatenate([part[name] for part in read]) for name in ("src", "dst", "w", "layer", "ky", "kx")}
        metrics = {key: float(value) for key, value in props.items() if key not in CHECKPOINT_PROPERTIES}
        meta = {key: value for key, value in meta.items() if key != "name"}
        activation = meta.pop("activation", None) or "relu"
        curves = curves_from_properties(*(props.get(name) for name in CURVE_PROPERTIES))
        return assemble(
            architecture, split_synapses(columns, widths, sources, targets, run, level),
            self._neuron_values(run, level, offsets), run=run, level=level, widths=widths, layer_names=names,
            input_shape=props.get("input_shape") or None, activation=activation, metrics=metrics, meta=meta, curves=curves,
            architecture_source=props.get("architecture_source") or OLD_ARCHITECTURE_SOURCE,
        )

    def _neuron_values(self, run: str, level: int, offsets: np.ndarray) -> dict[str, np.ndarray]:
        """The float columns of the neurons (bias, batch-norm statistics) in global order, NaN where absent."""
        values = {name: np.full(int(offsets[-1]), np.nan) for name in NEURON_VALUES}
        rows = self._read(NEURON_VALUES_CYPHER, run=run, level=level)
        if rows:
            table = pd.DataFrame(rows)
            index = offsets[table["group"].to_numpy(dtype=np.int64)] + table["i"].to_numpy(dtype=np.int64)
            inside = index < offsets[-1]
            for name in NEURON_VALUES:
                values[name][index[inside]] = table[name].to_numpy(dtype=np.float64, na_value=np.nan)[inside]
        return values

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
            check_property_name(name, NEURON_PROPERTIES, "neuron property")
            values = np.asarray(values)
            if values.shape != (offsets[-1],):
                raise StoreError(f"neuron property {name!r} has {values.size} values for {offsets[-1]} neurons")
            if values.dtype.kind not in "biufU":
                raise StoreError(f"cannot store neuron property {name!r} of type {values.dtype}")
            text = SET_NEURON_PROPERTY_CYPHER.replace("{name}", name)
            for layer in range(len(offsets) - 1):
                for start in range(0, int(offsets[layer + 1] - offsets[layer]), self.batch):
                    chunk = values[offsets[layer] + start : min(offsets[layer] + start + self.batch, offsets[layer + 1])]
                    statements.append((text, {"run": run, "level": int(level), "group": layer, "start": start, "values": chunk.tolist()}))
        self._transaction(statements)

    def set_metrics(self, run: str, level: int, metrics: Mapping[str, float]) -> None:
        self._writable()
        for key in metrics:
            check_property_name(key, CHECKPOINT_PROPERTIES, "metric")
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
        props = {each: self._checkpoint_properties(run, each) for each in rows}
        pixels = check_input_shape(run, shape, {each: int(found["widths"][0]) for each, found in props.items()})
        channel, y, x = (axis.tolist() for axis in np.unravel_index(np.arange(pixels), shape))
        statements = []
        for each in rows:
            architecture = with_input_shape(props[each].get("architecture"), shape)
            statements.append((SET_INPUT_SHAPE_CYPHER, {"run": run, "level": each, "shape": list(shape), "architecture": architecture}))
            statements.append((SET_PIXELS_CYPHER, {"run": run, "level": each, "channel": channel, "y": y, "x": x}))
        self._transaction(statements)

    def set_synapse_flag(self, run: str, level: int, name: str, layer: np.ndarray, src: np.ndarray, dst: np.ndarray,
                         ky: np.ndarray | None = None, kx: np.ndarray | None = None) -> None:
        self._writable()
        check_property_name(name, SYNAPSE_PROPERTIES, "synapse flag")
        props = self._checkpoint_properties(run, level)
        sources, targets = layer_groups(parse_architecture(props.get("architecture")), len(props["layer_names"]))
        _, _, ky, kx = flagged_synapses(props["widths"], sources, targets, layer, src, dst, ky, kx)
        layer, src, dst = (np.asarray(a, dtype=np.int64) for a in (layer, src, dst))
        keys = {"run": run, "level": int(level)}
        statements = []
        for l, (source, target) in enumerate(zip(sources, targets)):
            where = {**keys, "layer": l, "source": source}
            statements.append((CLEAR_SYNAPSE_FLAG_CYPHER.replace("{name}", name), where))
            chosen = layer == l
            for start in range(0, int(chosen.sum()), self.batch):
                part = slice(start, start + self.batch)
                statements.append((
                    SET_SYNAPSE_FLAG_CYPHER.replace("{name}", name),
                    {**where, "target": target, **{axis: values[chosen][part].tolist()
                                                   for axis, values in (("src", src), ("dst", dst), ("ky", ky), ("kx", kx))}},
                ))

        def all_marked(rows, params):
            if "src" in params and rows[0]["marked"] != len(params["src"]):
                missing = len(params["src"]) - rows[0]["marked"]
                raise InputError(f"{missing} of the synapses to mark are not in the checkpoint")

        self._transaction(statements, all_marked)

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
        neurons = {(row["run"], row["level"], row["group"]): row["n"] for row in self._read(CHECK_NEURONS_CYPHER)}
        checkpoints = self._read(CHECK_CHECKPOINTS_CYPHER)
        layouts = {(row["run"], row["level"]): layer_groups(parse_architecture(row["architecture"]), len(row["layer_names"] or []))
                   for row in checkpoints}
        rows = {table: self._relationship_counts(table, layouts) for table in CHECK_RELATIONSHIPS_CYPHER}
        problems, known = [], set()
        for row in checkpoints:
            run, level = row["run"], row["level"]
            known.add((run, level))
            remove = (lambda run=run, level=level: self._delete_batched(run, [level], lambda _: None))
            if row["incomplete"]:
                problems.append(unfinished_problem(run, level, remove))
                continue
            widths = [int(w) for w in row["widths"]]
            found = [neurons.get((run, level, group), 0) for group in range(len(widths))]
            layers = len(layouts[run, level][0])
            counts = [rows["SYNAPSE"][0].get((run, level, l), 0) for l in range(layers)]
            wrong = layer_mismatches(widths, found, counts, row["layer_synapses"] or [row["edges"]])
            if row["connections"] is not None:
                wrong += layer_mismatches(widths, widths, [rows["CONNECTION"][0].get((run, level, 0), 0)], [row["connections"]],
                                          "CONNECTION rows")
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
        for table, (_, stray) in rows.items():
            if stray:
                problems.append(Problem(
                    "stray-synapses", f"{stray:,} {table} rows join neurons of different checkpoints or not the groups "
                    "of their layer", "delete them", lambda table=table: self._delete_stray(table, layouts),
                ))
        for row in self._read(EMPTY_RUNS_CYPHER):
            problems.append(Problem("empty-run", "a run without checkpoints", "delete it",
                                    lambda run=row["run"]: self._write(DELETE_EMPTY_RUN_CYPHER, run=run), row["run"]))
        return problems

    def _relationship_counts(self, table: str, layouts: dict) -> tuple[dict, int]:
        """Rows of a relationship table that lie where they belong, by (run, level, layer), and how many
        do not (different checkpoints at both ends, or a synapse outside its layer's groups)."""
        counts, stray = {}, 0
        for row in self._read(CHECK_RELATIONSHIPS_CYPHER[table]):
            key = (row["run"], row["level"])
            sources, targets = layouts.get(key, ([], []))
            l = row["layer"]
            inside = key in layouts and row["same"] and (table != "SYNAPSE" or (
                l is not None and 0 <= l < len(sources) and (row["source"], row["target"]) == (sources[l], targets[l])))
            if inside:
                counts[(*key, l)] = counts.get((*key, l), 0) + row["n"]
            elif key in layouts:
                stray += row["n"]
        return counts, stray

    def _delete_stray(self, table: str, layouts: dict) -> None:
        while self._write(DELETE_FOREIGN_CYPHER[table], batch=self.batch)[0]["deleted"]:
            pass
        if table != "SYNAPSE":
            return
        for (run, level), (sources, targets) in layouts.items():
            while self._write(DELETE_MISPLACED_SYNAPSES_CYPHER, run=run, level=level, sources=sources, targets=targets,
                              batch=self.batch)[0]["deleted"]:
                pass


def _checkpoint_statements(checkpoint: Checkpoint, *, incomplete: bool, batch: int, step: Progress):
    """The statements that create a checkpoint: the Checkpoint node, the neurons of each group, the
    synapse batches, then the weightless connections (parameters built lazily, so a batched write holds
    one batch at a time)."""
    keys = {"run": checkpoint.run, "level": int(checkpoint.level)}
    properties = {
        **recorded_counts(checkpoint),
        "edges": checkpoint.edges,
        "sparsity": float(checkpoint.sparsity),
        "layer_names": list(checkpoint.layer_names),
        "widths": [int(w) for w in checkpoint.widths],
        "written": uuid.uuid4().hex,
        "architecture_source": checkpoint.architecture_source,
        "architecture": architecture_json(checkpoint),
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
    columns, offsets = neuron_columns(checkpoint), checkpoint.offsets
    for group, width in enumerate(checkpoint.widths):
        lists = {name: _nullable_list(columns[name][offsets[group] : offsets[group + 1]])
                 for name in ("channel", "y", "x", *NEURON_VALUES)}
        yield CREATE_NEURONS_CYPHER, {**keys, "group": group, "width": int(width), **lists}
    step(f"{checkpoint.edges:,} synapses")
    for l, (layer, batches) in enumerate(zip(checkpoint.layers, synapse_batches_by_layer(checkpoint, batch))):
        for rows in batches:
            yield CREATE_SYNAPSES_CYPHER, {**keys, "layer": l, "source": layer.source, "target": layer.target, **rows}
    src, dst, which = checkpoint.connection_edges()
    for c, connection in enumerate(checkpoint.connections):
        mine = which == c
        local_src, local_dst = src[mine] - offsets[connection.source], dst[mine] - offsets[connection.target]
        for start in range(0, len(local_src), batch):
            yield CREATE_CONNECTIONS_CYPHER, {
                **keys, "source": connection.source, "target": connection.target, "kind": connection.kind,
                "src": local_src[start : start + batch].tolist(), "dst": local_dst[start : start + batch].tolist(),
            }


def _nullable_list(values: np.ndarray) -> list | None:
    """A column of model.columns as a parameter list: None when all absent (the property is left out), else
    with None where absent (-1 or NaN)."""
    absent = np.isnan(values) if values.dtype.kind == "f" else values < 0
    if absent.all():
        return None
    listed = values.tolist()
    return [None if gone else value for value, gone in zip(listed, absent)] if absent.any() else listed


def synapse_batches_by_layer(checkpoint: Checkpoint, batch: int):
    """Per layer, a lazy sequence of batches of at most ``batch`` synapses, grouped by target neuron.

    A batch is ``{"targets", "bounds", "src", "w", "ky", "kx"}``: the synapses into ``targets[j]`` are
    ``src[bounds[j]:bounds[j+1]]`` with weights ``w[...]`` and kernel offsets ``ky``/``kx`` (None for a
    Linear layer) (parallel lists, sorted by target), so the server seeks each target neuron once per
    batch instead of once per synapse, and the client encodes
    two values per synapse besides the offsets. Lists of Python ints and floats are what the driver's Rust
    extension encodes fastest; this is the whole client-side cost of an ingest besides the network
    (bench/bench_neo4j.py measures it).
    """
    for layer in checkpoint.layers:
        yield _layer_batches(layer, batch)


def _layer_batches(layer: Layer, batch: int):
    src, dst, w, ky, kx = layer.src, layer.dst, layer.w, layer.ky, layer.kx
    if len(dst) > 1 and (np.diff(dst) < 0).any():  # from_dense and the loaders give target order already
        order = np.argsort(dst, kind="stable")
        src, dst, w = src[order], dst[order], w[order]
        ky, kx = (None if offset is None else offset[order] for offset in (ky, kx))
    for start in range(0, len(dst), batch):
        targets = dst[start : start + batch]
        bounds = np.concatenate([[0], np.flatnonzero(np.diff(targets)) + 1, [len(targets)]])
        yield {
            "targets": targets[bounds[:-1]].tolist(),
            "bounds": bounds.tolist(),
            "src": src[start : start + batch].tolist(),
            "w": w[start : start + batch].astype(np.float64).tolist(),
            **{name: None if offset is None else offset[start : start + batch].tolist() for name, offset in (("ky", ky), ("kx", kx))},
        }


def _read_layer(tx, statement: str, run: str, level: int, layer: int, source: int) -> dict[str, np.ndarray]:
    """One layer's synapses, one record per source neuron (lists of targets, weights and, for a
    convolution, kernel offsets) into numpy (``ky``/``kx`` -1 for a Linear layer, whose synapses have none)."""
    columns = {name: [] for name in ("src", "dst", "w", "ky", "kx")}
    for record in tx.run(statement, run=run, level=level, layer=layer, source=source):
        dst = record["dst"]
        columns["src"].append(np.full(len(dst), record["src"], dtype=np.int64))
        columns["dst"].append(np.asarray(dst, dtype=np.int64))
        columns["w"].append(np.asarray(record["w"], dtype=np.float32))
        if "ky" in record.keys():
            for axis in ("ky", "kx"):
                columns[axis].append(np.asarray(record[axis], dtype=np.int16))
    types = {"src": np.int64, "dst": np.int64, "w": np.float32, "ky": np.int16, "kx": np.int16}
    found = {name: np.concatenate(parts) if parts else np.zeros(0, types[name]) for name, parts in columns.items()}
    if len(found["ky"]) != len(found["w"]) or len(found["kx"]) != len(found["w"]):
        if len(found["ky"]) or len(found["kx"]):
            raise DamagedArchive.checkpoint(run, level, f"some synapses of layer {layer} have no kernel offset")
        found["ky"] = found["kx"] = np.full(len(found["w"]), -1, dtype=np.int16)
    return found


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
    """The driver's errors carry the server's words in ``message``."""
    return first_line(getattr(error, "message", None) or error)
