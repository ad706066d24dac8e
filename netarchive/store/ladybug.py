"""The embedded archive: a LadybugDB database in a directory, no server needed.

The files of an archive directory and how they are opened are in ladybug_files.py; readers beside the
writer in archive_lock.py; ``check`` in ladybug_check.py. Neurons get a 64-bit key
``checkpoint_id << 32 | global_index``, which makes bulk writes (``COPY`` from Arrow, about 2 M
synapses/s) and range reads of one checkpoint cheap.

Durability. LadybugDB 0.22 does not make a ``COPY`` inside a committed transaction durable until the
post-commit checkpoint has finished: a kill or a full disk during that checkpoint loses the copied rows
while keeping the small ``CREATE``\\ d ones (docs/ladybug_durability.md). So a write has two phases:

1. one transaction creates the Checkpoint node marked ``incomplete`` and commits; then the neurons and
   the synapses are copied, each ``COPY`` committing by itself, and a ``CHECKPOINT`` statement forces it
   all into the database file;
2. a second, small transaction clears the mark (and, for ``--replace``, removes the old checkpoint in
   the same commit), followed by another ``CHECKPOINT``.

Every read ignores marked checkpoints and the next write removes them, so a crash anywhere leaves the
old checkpoint or the new one, never a mixture. A small write (``LOGGED_SYNAPSES``, replacing nothing)
needs neither phase: its rows are ``CREATE``\\ d in one transaction, which LadybugDB logs whole, so its
commit alone makes it durable and no ``CHECKPOINT`` (whose cost grows with the archive) follows.

Deleting relationships row by row is slow (about 30 k/s), so ``rm`` and ``--replace`` may instead copy
the synapses that stay into a new table, make it durable, and swap it in for the old one (``DROP TABLE``
and ``ALTER TABLE ... RENAME`` in one small transaction): never a ``DROP`` and a big ``COPY`` in one
commit, which a crash would turn into an empty synapse table. Readers are held off (archive_lock.py)
from an operation's first commit to its end.

Values always go into statements as parameters. The only text formatted into statements is names (the
archive's tables and columns, and the property names users choose for metrics, meta keys and write-back,
which become columns), always through :func:`_statement`, which checks each one where it is formatted in.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import uuid
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from netarchive.errors import AlreadyArchived, ArchiveBusy, InputError, NotFound, StoreError, first_line
from netarchive.model import ACTIVATIONS, Checkpoint
from netarchive.model.columns import (
    NEURON_VALUES, architecture_json, assemble, connection_columns, layer_groups, neuron_columns, parse_architecture,
    split_synapses, synapse_columns, with_input_shape,
)
from netarchive.store import faults
from netarchive.store.archive_lock import ArchiveLock, read_wait
from netarchive.store.base import (
    CHECKPOINT_FIELDS, CHECKPOINT_PROPERTIES, CURVE_PROPERTIES, NEURON_PROPERTIES, OLD_ARCHITECTURE_SOURCE,
    READ_ONLY_MESSAGE, RUN_PROPERTIES, SYNAPSE_PROPERTIES, Progress, Store, check_input_shape, check_property_name,
    curve_properties, curve_table, curves_from_properties, damaged, flagged_synapses, not_found_among,
    recorded_counts, verify_counts,
)
from netarchive.store.ladybug_files import NeedsRecovery, open_database, prepare
from netarchive.store.ladybug_packing import Packing
from netarchive.store.ladybug_schema import (
    ARROW_TYPES as _ARROW_TYPES, COUNTED_RELATIONSHIPS, LADYBUG_TYPES as _LADYBUG_TYPES, TABLE_INFO as _TABLE_INFO,
    TABLES as _TABLES, Type as _Type, declared_columns, statement as _statement, upgrade,
)

REBUILD_FACTOR = 40
"""Rebuild the synapse table instead of deleting rows when fewer than this many synapses per deleted
one remain (deleting a row costs about this many times as much as copying one back)."""
_WRITE_REFUSED = re.compile(r"write operations in a read-only database|write query inside a read-only transaction")
"""LadybugDB's words for a write in a read-only archive or transaction (mapped to READ_ONLY_MESSAGE)."""
UPDATE_REBUILD_FACTOR = 200
"""The same for setting a synapse property: updating a synapse found by its two neurons costs about 200
times as much as copying one back (0.6 ms against 3 us, bench/spanning.md)."""
BYTES_PER_SYNAPSE = 34
"""Disk space one synapse takes while LadybugDB 0.22 copies it: the peak growth of the archive directory
(database, shadow and log files) during an ingest, measured here (2 cores, ext4) at 32.1 bytes per
synapse for a dense 1024-1024-1024-1000 checkpoint into an empty table (31.6 bytes stay; 19.1 and 18.6
before the ``packed`` column, which does not compress).
A ``COPY`` into a non-empty synapse table rewrites it (peaks of 10-17 bytes per synapse of the whole
table were measured), so an ingest is estimated on all the synapses of the table after it."""
BYTES_PER_NEURON = 200
"""The same per neuron (eight columns and the primary-key index): 158-176 bytes measured for checkpoints
of 100 002 neurons and a few hundred synapses."""
FIXED_BYTES = 8 << 20
"""Space a write needs whatever its size (log, shadow pages, catalog): about 3.6 MB were measured for a
checkpoint of 21 000 synapses."""
BATCH_SYNAPSES = 4_000_000
"""At most this many synapses in one two-phase write of several checkpoints (``write_many``): a study's
levels go in one ``COPY`` each of neurons and synapses (bench/README.md: the durable checkpoint and the
publishing commit of every checkpoint cost more than its rows), while a batch's Arrow tables and
LadybugDB's copy of them stay a few hundred MB (bench_ingest.py: 1.6 GB peak for 6.3 M synapses)."""
LOGGED_SYNAPSES = 10_000
"""A write of at most this many new synapses (replacing nothing) goes in as one transaction of ``CREATE``
statements instead of ``COPY``: LadybugDB writes created rows to its log, so the commit is durable as it
returns, where a ``COPY`` needs a checkpoint whose cost grows with the archive (0.5 s and more for a
4,765-synapse checkpoint into 100 runs, bench/README.md) while creating its rows takes 0.03 s. Its log
(:data:`LOG_BYTES_PER_SYNAPSE`, at most about 3 MB) is folded in by LadybugDB's own checkpoint once it
passes ladybug_files.LOG_CHECKPOINT_BYTES, and by the close."""
LOG_BYTES_PER_SYNAPSE = 280
LOG_BYTES_PER_NEURON = 420
"""The log such a write appends: 272 bytes a synapse and 412 a neuron measured (5.1 MB for 18 121
synapses and 500 neurons, 4.1 MB for 13 115 and 1 216). LadybugDB 0.22 ends the process when it cannot
write its log (at the close after the failed commit), so the space check counts it in."""
REBUILT = "_rebuilt"
"""Suffix of the table a rebuild copies the synapses into before it is swapped in; one left over by an
interrupted rebuild is dropped by the next write."""

_COMPLETE = "c.incomplete IS NULL"
"""The condition every read puts on a Checkpoint node: marked ones are being written or removed."""


def _neuron_key(checkpoint_id: int, global_index) -> np.ndarray:
    return (np.int64(checkpoint_id) << np.int64(32)) + np.asarray(global_index, dtype=np.int64)


class LadybugStore(Store):
    """An archive in a local directory (see the module docstring and ladybug_files.py for the layout).

    ``wait``: seconds a reading store waits for the writer's commit or for a recovery before it gives
    up (default ``$NETARCHIVE_READ_RETRY_SECONDS`` or 30).
    """

    def __init__(self, path: str | Path, *, read_only: bool = False, wait: float | None = None,
                 discard_damaged_log: bool = False):
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        self.read_only = read_only
        self.wait = read_wait(wait)
        prepare(self.path, read_only)
        self._lock = ArchiveLock(self.path)
        self._db = self._conn = None
        self._generation = None
        self._operations = 0
        self._uncheckpointed = False
        try:
            if read_only:
                with self._reading():
                    pass
            else:
                self._open_writer(discard_damaged_log)
        except BaseException:
            self._close_database()
            self._lock.close()
            raise

    # -- opening and closing -------------------------------------------------------------------
    def _open_writer(self, discard_damaged_log: bool) -> None:
        """Open for writing, recovering what a crash left, and bring the schema up to date."""
        import ladybug

        with self._operation():
            previous = self._lock.acquire(self.wait, self._in_use)
            self._uncheckpointed = bool(previous.get("committing"))  # kept on record until this open recovers
            self._db = open_database(
                self.path, read_only=False, committing=bool(previous.get("committing")),
                discard_damaged_log=discard_damaged_log,
            )
            self._conn = ladybug.Connection(self._db)
            self._run("CHECKPOINT")  # fold in what recovery replayed from the log, so that no later open replays it
            self._uncheckpointed = False
            upgrade(self)

    def _in_use(self, state: dict) -> ArchiveBusy:
        """The lock stayed taken while this writer opened: by another writer committing, or by a reader."""
        writing = state.get("committing") and _alive(state.get("pid"))
        who = f" (process {state['pid']}, committing a write)" if writing else " (a reading command, a long query?)"
        return ArchiveBusy(f"the archive at {self.location} is in use by another netarchive{who}: wait for it to finish and try again")

    def _writer_busy(self, state: dict) -> ArchiveBusy:
        who = f"process {state['pid']}" if state.get("pid") else "another netarchive"
        return ArchiveBusy(
            f"the archive at {self.location} is being written by {who}, which has held readers off for longer than "
            f"{self.wait:g} s: try again when it finishes, or wait longer with NETARCHIVE_READ_RETRY_SECONDS=SECONDS"
        )

    @contextmanager
    def _reading(self):
        """One reading operation of a read-only store: under the shared lock, on a database opened since
        the writer's last operation (reopened when the generation changed), recovering it first when an
        interrupted write left it needing that."""
        if not self.read_only:
            yield
            return
        with self._lock.shared(self.wait, self._writer_busy) as state:
            needs = self._open_reader(state, recover_first=True)
            if needs is None:
                yield
                return
        reason, required = needs
        try:
            self._recover(reason)
        except StoreError:
            if required:
                raise
        with self._lock.shared(self.wait, self._writer_busy) as state:
            needs = self._open_reader(state, recover_first=False)
            if needs is not None:
                why = "the directory is not writable" if not os.access(self.path, os.W_OK) else "a read-write open did not finish it"
                raise self._cannot_recover(needs[0], why)
            yield

    def _open_reader(self, state: dict, recover_first: bool) -> tuple[str, bool] | None:
        """(Re)open the read-only database if the writer changed it. Returns None, or what needs a
        recovery first and whether reading cannot do without: a write that stopped between a commit and
        its checkpoint can be read (LadybugDB replays its log, on every open: slow), so it is recovered
        when possible (``recover_first``); an interrupted checkpoint or an older schema must be."""
        import ladybug

        if self._conn is not None and state.get("generation") == self._generation:
            return None
        self._close_database()
        if recover_first and state.get("committing"):
            return "a write stopped between a commit and its checkpoint", False
        try:
            self._db = open_database(self.path, read_only=True, committing=bool(state.get("committing")))
        except NeedsRecovery as needs:
            return str(needs), True
        self._conn = ladybug.Connection(self._db)
        self._generation = state.get("generation")
        for table in _TABLES:
            missing = set(declared_columns(table)) - set(self._columns(table))
            if missing:
                self._close_database()
                return f"the archive's schema predates {', '.join(sorted(missing))}", True
        return None

    def _recover(self, reason: str) -> None:
        """Do what a read-write open does after a crash (finish LadybugDB's recovery, upgrade the
        schema), when no writer holds the archive; else say who will."""
        try:
            LadybugStore(self.path, read_only=False, wait=self.wait).close()
        except ArchiveBusy:
            raise ArchiveBusy(
                f"the archive at {self.location} needs recovery from an interrupted write ({reason}), and another "
                "netarchive has it open for writing: it recovers it when it closes it (or run `netarchive check --repair` then)"
            ) from None
        except StoreError as error:
            raise self._cannot_recover(reason, str(error)) from None

    def _cannot_recover(self, reason: str, why: str) -> StoreError:
        return StoreError(
            f"the archive at {self.location} needs recovery from an interrupted write ({reason}), which this reading "
            f"command cannot do ({why}): the next write or `netarchive check --repair` will"
        )

    def _ensure_schema(self) -> None:
        """Create what is missing of the schema and upgrade an older archive (ladybug_schema.upgrade)."""
        upgrade(self)

    @property
    def backend(self) -> str:
        return f"LadybugDB {version('ladybug')}"

    def close(self) -> None:
        if getattr(self, "_conn", None) is not None:
            if self.read_only:
                self._close_database()
            else:
                with self._operation():
                    self._lock.acquire()  # closing checkpoints the database: readers wait
                    self._uncheckpointed = not self._close_database()
        if getattr(self, "_lock", None) is not None:
            self._lock.close()

    def _close_database(self) -> bool:
        """Close the database; False when closing failed (a database that refused its last checkpoint,
        on a full disk, is recovered by the next open)."""
        if self._conn is None:
            return True
        conn, db, self._conn, self._db = self._conn, self._db, None, None
        try:
            conn.close()
            db.close()
        except RuntimeError:
            return False
        return True

    # -- statements ----------------------------------------------------------------------------
    def _run(self, query: str, params: Mapping | None = None):
        try:
            return self._conn.execute(query, dict(params or {}))
        except RuntimeError as error:
            raise _statement_error(error, self.location) from None

    def _rows(self, query: str, params: Mapping | None = None) -> list[list]:
        return self._run(query, params).get_all()

    def _arrow(self, query: str) -> pa.Table:
        """A bulk read through LadybugDB's native Arrow path (about 2x ``execute``; it takes no parameters)."""
        try:
            return self._conn.query_as_arrow(query, _ARROW_CHUNK).get_as_arrow()
        except RuntimeError as error:
            raise _statement_error(error, self.location) from None

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"the archive at {self.location} is open read-only")

    @contextmanager
    def _operation(self):
        """One operation of the writer: readers are held off from its first commit to its end, so that
        they only ever see the archive between operations."""
        self._operations += 1
        try:
            yield
        finally:
            self._operations -= 1
            if self._operations == 0:
                self._lock.release(committing=self._uncheckpointed)

    @contextmanager
    def _transaction(self, durable: bool = True, logged: bool = False):
        """One write transaction, committed and then checkpointed (durable); any exception
        (KeyboardInterrupt included) before the commit rolls everything back. ``durable=False`` leaves
        the checkpoint to the caller (:meth:`_copy_in`): a commit of ``CREATE``\\ d rows survives a crash
        without it, as LadybugDB replays it from the log. ``logged``: the transaction holds nothing else
        (no ``COPY``), so once its commit has returned it needs no checkpoint at all (:meth:`_create_in`)."""
        self._writable()
        with self._operation():
            faults.reach("transaction")
            self._run("BEGIN TRANSACTION")
            try:
                yield
            except BaseException:
                self._rollback()
                raise
            self._lock.acquire()
            before, self._uncheckpointed = self._uncheckpointed, True
            with _uninterrupted():
                faults.reach("commit")
                self._run("COMMIT")
                if durable:
                    self._checkpoint()
                elif logged:
                    self._uncheckpointed = before  # the log is whole: nothing for the next opener to discard

    def _checkpoint(self) -> None:
        """Force everything committed into the database file: until this returns, a crash may lose the
        rows a ``COPY`` committed (LadybugDB 0.22, docs/ladybug_durability.md)."""
        faults.reach("checkpoint")
        self._run("CHECKPOINT")
        self._uncheckpointed = False

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

    def _missing_columns(self, table: str, names, kind: str, reserved, what: str) -> list[tuple[str, str, str]]:
        """``(table, name, kind)`` of the columns ``names`` need that ``table`` lacks (each name checked;
        a column of another type is refused)."""
        existing, missing = self._columns(table), []
        for name in names:
            check_property_name(name, reserved, what)
            if name not in existing:
                missing.append((table, name, kind))
            elif existing[name] != kind:
                raise StoreError(f"{what} {name!r} is stored as {existing[name]} in this archive, not {kind}")
        return missing

    def _add_columns(self, columns: list[tuple[str, str, str]]) -> None:
        """Add ``(table, name, kind)`` columns in a transaction of their own, before the write that fills them.

        Never inside that write's transaction: LadybugDB 0.22 corrupts a string dictionary when a column is
        added inside a transaction that then writes the table, once one of its strings was updated earlier
        (the commit's checkpoint then fails: "String dictionary index is outside the offset table"; a run
        written twice, then a run with a new meta key, was enough). A crash after this commit leaves empty
        columns, which hold no checkpoint's data; a write that fails drops them (:meth:`_drop_columns`).
        """
        if columns:
            with self._transaction():
                for table, name, kind in columns:
                    self._run(_statement("ALTER TABLE {table} ADD {name} {kind}", table=table, name=name, kind=_Type(kind)))

    def _drop_columns(self, columns: list[tuple[str, str, str]]) -> None:
        """Drop the columns a failed write added (best effort: an empty column left behind holds no data)."""
        if not columns:
            return
        try:
            with self._transaction():
                for table, name, _ in reversed(columns):
                    self._run(_statement("ALTER TABLE {table} DROP {name}", table=table, name=name))
        except StoreError:
            pass

    def _label_columns(self, meta: Mapping[str, object], metrics: Mapping[str, object]) -> list[tuple[str, str, str]]:
        """The Run columns of new meta keys and the Checkpoint columns of new metrics."""
        return (self._missing_columns("Run", meta, "STRING", RUN_PROPERTIES, "meta key")
                + self._missing_columns("Checkpoint", metrics, "DOUBLE", CHECKPOINT_PROPERTIES, "metric"))

    def _check_space(self, synapses: int, neurons: int, what: str, logged: tuple[int, int] = (0, 0)) -> None:
        """Refuse a write the filesystem has no room for, before anything is written; ``logged``: the
        synapses and neurons it writes to the log (:data:`LOGGED_SYNAPSES`)."""
        needed = (FIXED_BYTES + BYTES_PER_SYNAPSE * synapses + BYTES_PER_NEURON * neurons
                  + LOG_BYTES_PER_SYNAPSE * logged[0] + LOG_BYTES_PER_NEURON * logged[1])
        free = shutil.disk_usage(self.path).free
        if free < needed:
            raise StoreError(
                f"not enough disk space for {what}: it needs about {needed / 2**20:,.0f} MB at {self.location} "
                f"(LadybugDB rewrites the {synapses:,} synapses of the table it copies into), "
                f"and {free / 2**20:,.0f} MB are free"
            )

    def _fits(self, synapses: int) -> bool:
        return shutil.disk_usage(self.path).free >= FIXED_BYTES + BYTES_PER_SYNAPSE * synapses

    # -- writing -------------------------------------------------------------------------------
    def write(self, checkpoint: Checkpoint, *, replace: bool = False, progress: Progress | None = None) -> None:
        self.write_many([checkpoint], replace=replace, progress=progress)

    def write_many(self, checkpoints: Sequence[Checkpoint], *, replace: bool = False, progress: Progress | None = None) -> None:
        """The checkpoints in two-phase writes of at most BATCH_SYNAPSES synapses each (a bigger checkpoint
        alone): one ``COPY`` of the neurons and one of the synapses of the batch, one durable checkpoint and
        one publishing commit, instead of as many as there are checkpoints."""
        step = progress or (lambda _: None)
        keys = [(c.run, c.level) for c in checkpoints]
        if len(set(keys)) < len(keys):
            raise InputError("the checkpoints to write give one (run, level) twice")
        for batch in _batches(checkpoints, BATCH_SYNAPSES):
            self._write_batch(batch, replace, step)

    def _write_batch(self, checkpoints: list[Checkpoint], replace: bool, step: Progress) -> None:
        """Two phases (module docstring): the checkpoints copied in marked incomplete and made durable,
        then published in a small commit that also removes the checkpoints they replace. Columns for new
        meta keys and metrics are added before, in their own commit (:meth:`_add_columns`)."""
        self._writable()
        with self._operation():
            self._remove_leftovers(step)
            replaced = []
            for checkpoint in checkpoints:
                old = self._checkpoint_id(checkpoint.run, checkpoint.level)
                if old is not None and not replace:
                    raise AlreadyArchived(
                        f"run {checkpoint.run!r} level {checkpoint.level} is already archived (use --replace to overwrite it)"
                    )
                replaced += [] if old is None else [old]
            columns = self._label_columns({key: None for c in checkpoints for key in c.meta},
                                          {key: None for c in checkpoints for key in c.metrics})
            rebuild = bool(replaced) and self._rebuild_pays(replaced)
            kept = self._synapse_rows(without=replaced) if rebuild else None
            table = kept.num_rows if rebuild else self._total_synapses()
            first = checkpoints[0]
            what = f"run {first.run!r} level {first.level}" if len(checkpoints) == 1 else f"{len(checkpoints)} checkpoints"
            synapses, neurons = sum(c.edges for c in checkpoints), sum(c.neurons for c in checkpoints)
            logged = not replaced and synapses <= LOGGED_SYNAPSES
            self._check_space(table + synapses, neurons, what, (synapses, neurons) if logged else (0, 0))
            try:
                self._add_columns(columns)
                if logged:
                    self._create_in(checkpoints, step)
                    return
                ids = self._copy_in(checkpoints, kept, step)
                faults.reach("publish")
                with _uninterrupted(), self._transaction():
                    if rebuild:
                        self._swap_in_rebuilt()
                        self._delete_nodes(replaced)
                    elif replaced:
                        self._mark_incomplete(replaced)
                    self._publish(ids)
            except BaseException as error:
                if not isinstance(error, _DiskFull):  # on a full disk the clean-up's own commit would fail too
                    self._remove_leftovers(step, quietly=True)
                    self._drop_columns(columns)
                raise
            if replaced and not rebuild:
                step("removing the old checkpoint" if len(replaced) == 1 else f"removing the {len(replaced)} old checkpoints")
                self._remove(replaced)

    def _create_in(self, checkpoints: list[Checkpoint], step: Progress) -> None:
        """A small write (:data:`LOGGED_SYNAPSES`): the checkpoints' nodes, neurons, synapses and
        connections created and published in one transaction, whose commit LadybugDB logs whole (a crash
        during it leaves the archive as it was, after it the new checkpoints); no checkpoint follows."""
        with self._transaction(durable=False, logged=True):
            ids = self._create_checkpoint_nodes(checkpoints, step)
            step("neurons")
            faults.reach("neurons")
            neurons, synapses, connections = _batch_tables(checkpoints, ids)
            self._run(_statement("LOAD FROM $rows CREATE (:Neuron {properties})", properties=_same_names(neurons.column_names)),
                      {"rows": neurons})
            for table, rows in (("SYNAPSE", synapses), ("CONNECTION", connections)):
                if rows.num_rows:
                    step(f"{rows.num_rows:,} {table.lower()}s")
                    faults.reach(table.lower() + "s")
                    self._create_relationships(table, rows)
            step("commit")
            self._publish(ids)
        faults.reach("published")

    def _create_relationships(self, table: str, rows: pa.Table) -> None:
        """``CREATE`` the relationships of ``rows`` (neuron keys ``from``, ``to``, then properties), each
        end found by its primary key."""
        statement = _statement("LOAD FROM $rows MATCH (a:Neuron {{id: _from}}) MATCH (b:Neuron {{id: _to}}) "
                               "CREATE (a)-[:{table} {properties}]->(b)",
                               table=table, properties=_same_names(rows.column_names[2:]))
        self._run(statement, {"rows": rows.rename_columns(["_from", "_to", *rows.column_names[2:]])})

    def _create_checkpoint_nodes(self, checkpoints: list[Checkpoint], step: Progress) -> list[int]:
        """The Run and Checkpoint nodes (marked incomplete) of ``checkpoints``, in the open transaction; their ids."""
        ids = []
        for checkpoint in checkpoints:
            ids.append(self._next_id())
            step("checkpoint")
            self._write_run_and_checkpoint(checkpoint, ids[-1])
        return ids

    def _publish(self, ids: list[int]) -> None:
        self._run("UNWIND $ids AS i MATCH (c:Checkpoint {id: i}) SET c.incomplete = NULL", {"ids": ids})

    def _copy_in(self, checkpoints: list[Checkpoint], kept: pa.Table | None, step: Progress) -> list[int]:
        """Phase 1: the checkpoints' nodes (marked incomplete) committed, then their neurons and synapses
        copied, all made durable by one ``CHECKPOINT``; the synapses go into the synapse table, or with
        ``kept`` into a rebuilt one. Returns their ids.

        Each ``COPY`` commits on its own (no ``BEGIN TRANSACTION`` around it): into an empty table
        LadybugDB 0.22 then writes the rows straight into it, where inside a transaction it stages them
        and copies them again at the commit (1.63 M synapses: 9.0 s against 11.5 s, bench/README.md); into
        a table that holds rows both take the same time. A crash between these commits leaves checkpoints
        marked incomplete, which the next write removes with whatever of their rows got in."""
        with self._transaction(durable=False):
            ids = self._create_checkpoint_nodes(checkpoints, step)
        step("neurons")
        neurons, synapses, connections = _batch_tables(checkpoints, ids)
        self._copy_committed("neurons", _statement("COPY Neuron({columns}) FROM $rows", columns=neurons.column_names), neurons)
        step(f"{synapses.num_rows:,} synapses")
        if kept is None:
            self._copy_committed("synapses", _statement("COPY SYNAPSE({columns}) FROM $rows", columns=synapses.column_names[2:]),
                                 synapses)
        else:
            with self._transaction(durable=False):
                self._copy_rebuilt(kept, synapses)
        if connections.num_rows:
            step(f"{connections.num_rows:,} connections")
            self._copy_committed(None, "COPY CONNECTION FROM $rows", connections)
        step("commit")
        with _uninterrupted():
            self._checkpoint()
        return ids

    def _copy_committed(self, point: str | None, statement: str, rows: pa.Table) -> None:
        """One ``COPY`` that commits by itself (see :meth:`_copy_in`), after the transaction that marked
        its checkpoints incomplete (which took the lock and recorded the commit). Ctrl-C waits for it to
        end: LadybugDB commits and checkpoints inside the statement, where it must not be interrupted."""
        if point:
            faults.reach(point)
        with _uninterrupted():
            self._run(statement, {"rows": rows})

    def _next_id(self) -> int:
        rows = self._rows("MERGE (c:Counter {name: 'checkpoint'}) ON CREATE SET c.value = 0 SET c.value = c.value + 1 RETURN c.value")
        return int(rows[0][0])

    def _write_run_and_checkpoint(self, checkpoint: Checkpoint, checkpoint_id: int) -> None:
        self._run("MERGE (r:Run {name: $run}) SET r.activation = $activation", {"run": checkpoint.run, "activation": checkpoint.activation})
        for key, value in checkpoint.meta.items():
            self._run(_statement("MATCH (r:Run {{name: $run}}) SET r.{key} = $value", key=key),
                      {"run": checkpoint.run, "value": str(value)})
        counts = recorded_counts(checkpoint)
        self._run(
            "MATCH (r:Run {name: $run}) "
            "CREATE (r)-[:HAS_CHECKPOINT]->(c:Checkpoint {id: $id}) "
            "SET c.run = $run, c.level = $level, c.neurons = $neurons, c.edges = $edges, c.sparsity = $sparsity, "
            "c.layer_names = $layer_names, c.widths = $widths, c.input_shape = $input_shape, c.written = $written, "
            "c.layer_synapses = $layer_synapses, c.incomplete = true, c.architecture_source = $architecture_source, "
            "c.architecture = $architecture, c.connections = $connections",
            {
                "run": checkpoint.run,
                "id": checkpoint_id,
                "level": checkpoint.level,
                "neurons": counts["neurons"],
                "edges": checkpoint.edges,
                "sparsity": checkpoint.sparsity,
                "layer_names": list(checkpoint.layer_names),
                "widths": [int(w) for w in checkpoint.widths],
                "input_shape": list(checkpoint.input_shape) if checkpoint.input_shape else None,
                "written": uuid.uuid4().hex,
                "layer_synapses": counts["layer_synapses"],
                "architecture_source": checkpoint.architecture_source,
                "architecture": architecture_json(checkpoint),
                "connections": counts["connections"],
            },
        )
        self._write_metrics(checkpoint_id, checkpoint.metrics)
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

    def _write_metrics(self, checkpoint_id: int, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self._run(_statement("MATCH (c:Checkpoint {{id: $id}}) SET c.{key} = $value", key=key),
                      {"id": checkpoint_id, "value": float(value)})

    # -- reading -------------------------------------------------------------------------------
    def _checkpoint_id(self, run: str, level: int) -> int | None:
        rows = self._rows(
            f"MATCH (c:Checkpoint {{run: $run, level: $level}}) WHERE {_COMPLETE} RETURN c.id", {"run": run, "level": int(level)}
        )
        return int(rows[0][0]) if rows else None

    def not_found(self, run: str, level: int | None = None) -> NotFound:
        """The error for a (run, level) that no complete checkpoint has: left unfinished, or unknown (saying
        what exists). Called inside a reading operation, so it lists without starting another."""
        if level is not None and self._rows(
            "MATCH (c:Checkpoint {run: $run, level: $level}) WHERE c.incomplete RETURN c.id", {"run": run, "level": int(level)}
        ):
            return NotFound.unfinished(run, level)
        listing = pd.DataFrame(self._rows(f"MATCH (c:Checkpoint) WHERE {_COMPLETE} RETURN c.run, c.level"), columns=["run", "level"])
        return not_found_among(listing, run, level, self.location)

    def checkpoints(self, run: str | None = None) -> pd.DataFrame:
        query = f"MATCH (c:Checkpoint) WHERE {_COMPLETE} RETURN c.* ORDER BY c.run, c.level" if run is None else (
            f"MATCH (c:Checkpoint) WHERE {_COMPLETE} AND c.run = $run RETURN c.* ORDER BY c.run, c.level"
        )
        with self._reading():
            table = self._run(query, {"run": run}).get_as_df()
        table.columns = [column.removeprefix("c.") for column in table.columns]
        table["layers"] = [len(names) for names in table["layer_names"]] if len(table) else pd.Series(dtype=int)
        metrics = sorted(column for column in table.columns if column not in CHECKPOINT_PROPERTIES)  # as on Neo4j
        table["architecture_source"] = table["architecture_source"].fillna(OLD_ARCHITECTURE_SOURCE)  # archived before it was recorded
        return table[list(CHECKPOINT_FIELDS) + metrics].reset_index(drop=True)

    def unfinished(self) -> pd.DataFrame:
        with self._reading():
            rows = self._rows("MATCH (c:Checkpoint) WHERE c.incomplete RETURN c.run, c.level ORDER BY c.run, c.level")
        return pd.DataFrame(rows, columns=["run", "level"])

    def runs(self) -> pd.DataFrame:
        with self._reading():
            table = self._run(_RUNS).get_as_df()
        table.columns = ["run" if column == "r.name" else column.removeprefix("r.") for column in table.columns]
        return table.reset_index(drop=True)

    def curves(self, runs: list[str] | None = None) -> pd.DataFrame:
        with self._reading():
            if runs is None:
                return curve_table(self._rows(f"MATCH (c:Checkpoint) WHERE {_COMPLETE} RETURN " + _CURVE_FIELDS))
            return curve_table(self._rows(f"MATCH (c:Checkpoint) WHERE {_COMPLETE} AND list_contains($runs, c.run) RETURN "
                                          + _CURVE_FIELDS, {"runs": list(runs)}))

    def versions(self) -> dict[tuple[str, int], str]:
        with self._reading():
            rows = self._rows(f"MATCH (c:Checkpoint) WHERE {_COMPLETE} RETURN c.run, c.level, c.written")
        return {(run, int(level)): written for run, level, written in rows}

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    def read(self, run: str, level: int) -> Checkpoint:
        with self._reading():
            return self._read(run, level)

    def _read(self, run: str, level: int) -> Checkpoint:
        found = self._run(
            f"MATCH (r:Run)-[:HAS_CHECKPOINT]->(c:Checkpoint {{run: $run, level: $level}}) WHERE {_COMPLETE} RETURN r.*, c.*",
            {"run": run, "level": int(level)},
        ).rows_as_dict().get_all()
        if not found:
            raise self.not_found(run, level)
        row = found[0]
        checkpoint_id, widths = row["c.id"], [int(w) for w in row["c.widths"]]
        architecture = parse_architecture(row.get("c.architecture"))
        names = row["c.layer_names"]
        lo, hi = _key_range(checkpoint_id).values()
        packed = self._packed_values(checkpoint_id, row["c.edges"])
        if packed is None:
            synapses = self._unpacked_synapses(checkpoint_id, architecture)
        else:
            synapses = Packing(widths, architecture, len(names)).unpack(packed, run, level)
        values, neurons = self._neuron_values(checkpoint_id, sum(widths))
        counts = np.bincount(synapses["layer"].astype(np.int64), minlength=len(names)) if len(names) else []
        verify_counts(
            {"neurons": row["c.neurons"], "edges": row["c.edges"], "layer_synapses": row.get("c.layer_synapses"),
             "connections": row.get("c.connections")},
            {"neurons": neurons, "edges": len(synapses["w"]), "layer_synapses": counts,
             "connections": self._rows(_CONNECTIONS_OF, {"lo": lo, "hi": hi})[0][0]},
            run, level,
        )
        sources, targets = layer_groups(architecture, len(names))
        metrics = {
            key[2:]: float(value)
            for key, value in row.items()
            if key.startswith("c.") and key[2:] not in CHECKPOINT_PROPERTIES and value is not None
        }
        meta = {key[2:]: value for key, value in row.items() if key.startswith("r.") and key != "r.name" and value is not None}
        activation = meta.pop("activation", None) or "relu"
        curves = curves_from_properties(*(row.get(f"c.{name}") for name in CURVE_PROPERTIES))
        return assemble(
            architecture, split_synapses(synapses, widths, sources, targets, run, level),
            values, run=run, level=level, widths=widths, layer_names=names,
            input_shape=row["c.input_shape"], activation=activation, metrics=metrics, meta=meta, curves=curves,
            architecture_source=row.get("c.architecture_source") or OLD_ARCHITECTURE_SOURCE,
        )

    def _unpacked_synapses(self, checkpoint_id: int, architecture: Mapping | None, offsets: bool = False) -> dict[str, np.ndarray]:
        """A checkpoint's synapse columns from their own properties: for synapses without ``packed``
        (ladybug_packing.py), six columns to read instead of one (``offsets``: the kernel offsets also of a
        network without convolutions, which it otherwise leaves out)."""
        global_index = self._global_index(checkpoint_id)
        # The kernel offsets only where a layer has them: a network without convolutions reads two columns fewer.
        conv = offsets or (architecture is not None and any(spec.get("conv") for spec in architecture["layers"]))
        values = ("w", "layer", "ky", "kx") if conv else ("w", "layer")
        edges = self._arrow(_CHECKPOINT_SYNAPSES % (*_key_range(checkpoint_id).values(), "".join(f", s.{name}" for name in values)))
        return {"src": global_index(edges.column(0).to_numpy()), "dst": global_index(edges.column(1).to_numpy()),
                **{name: edges.column(i + 2).to_numpy() for i, name in enumerate(values)}}

    def _packed_values(self, checkpoint_id: int, edges: int) -> np.ndarray | None:
        """The ``packed`` column (ladybug_packing.py) of a checkpoint's synapses, the one column its read
        needs, or None when not all of its ``edges`` synapses have one (archived before it; too big to pack;
        damaged). Counting them first costs a tenth of the read: the Arrow path cannot tell a null."""
        lo, hi = _key_range(checkpoint_id).values()
        if self._rows(_PACKED_COUNT % (lo, hi))[0][0] != edges:
            return None
        packed = self._arrow(_PACKED_SYNAPSES % (lo, hi)).column(0).to_numpy()
        return packed if len(packed) == edges else None

    def _packed_disagreements(self, checkpoint_id: int, widths, architecture: Mapping | None, layers: int,
                              edges: int) -> int:
        """How many synapses of a checkpoint have a ``packed`` value other than their properties give
        (0 when they are not all packed: reads use the properties then); for ``check``."""
        packed = self._packed_values(checkpoint_id, edges)
        if packed is None:
            return 0
        expected = Packing(widths, architecture, layers).pack(self._unpacked_synapses(checkpoint_id, architecture, offsets=True))
        if expected is None or len(expected) != len(packed):
            return len(packed)
        return int(np.count_nonzero(np.sort(packed) != np.sort(expected)))

    def _global_index(self, checkpoint_id: int):
        """A function from LadybugDB's internal node offsets to the checkpoint's global neuron indices
        (-1 for a node that is not one of its neurons).

        Bulk reads return ``offset(id(n))`` rather than the key ``n.id``: fetching a property of the far
        end of every synapse costs a lookup per synapse (reads are 3x faster without it)."""
        lo, hi = _key_range(checkpoint_id).values()
        table = self._arrow(_NEURON_OFFSETS % (lo, hi))
        internal, key = table.column(0).to_numpy(), table.column(1).to_numpy() - lo
        first = internal.min() if len(internal) else 0
        lookup = np.full((internal.max() - first + 2) if len(internal) else 1, -1, dtype=np.int64)
        lookup[internal - first] = key

        def index(offsets: np.ndarray) -> np.ndarray:
            return lookup[np.clip(offsets - first, -1, len(lookup) - 1)]  # -1 and beyond: the last, unused slot

        return index

    def _neuron_values(self, checkpoint_id: int, neurons: int) -> tuple[dict[str, np.ndarray], int]:
        """The float columns of every neuron of a checkpoint (bias, batch-norm statistics) in global
        order, NaN where there is none; and how many neurons it has."""
        lo = _key_range(checkpoint_id)["lo"]
        # Not the Arrow path: it does not return nulls as nulls (LadybugDB 0.22).
        table = self._run(
            "MATCH (n:Neuron) WHERE n.id >= $lo AND n.id < $hi RETURN n.id, "
            + ", ".join(_statement("n.{name}", name=name) for name in NEURON_VALUES),
            _key_range(checkpoint_id),
        ).get_as_arrow()
        index = table.column(0).to_numpy() - lo
        inside = index < neurons  # a damaged checkpoint may hold more neurons than its widths: the read says so
        found = {}
        for i, name in enumerate(NEURON_VALUES):
            values = np.full(neurons, np.nan)
            values[index[inside]] = table.column(i + 1).to_numpy(zero_copy_only=False).astype(np.float64)[inside]
            found[name] = values
        return found, table.num_rows

    def set_metrics(self, run: str, level: int, metrics: Mapping[str, float]) -> None:
        self._writable()
        with self._operation():
            checkpoint_id = self._checkpoint_id(run, level)
            if checkpoint_id is None:
                raise self.not_found(run, level)
            self._add_columns(self._label_columns({}, metrics))
            with self._transaction():
                self._write_metrics(checkpoint_id, metrics)

    def set_activation(self, run: str, activation: str) -> None:
        if activation not in ACTIVATIONS:
            raise InputError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        with self._transaction():
            if not self._rows("MATCH (r:Run {name: $run}) SET r.activation = $a RETURN r.name", {"run": run, "a": activation}):
                raise self.not_found(run)

    def cypher(self, query: str, params: Mapping[str, object] | None = None) -> pd.DataFrame:
        with self._reading():
            self._run("BEGIN TRANSACTION READ ONLY")
            try:
                result = self._run(query, params)
            except StoreError as error:
                if re.search(r"\.index\b", query) and "Parser exception" in str(error):
                    raise StoreError(f"{error} (in LadybugDB `index` is a keyword: write n.`index`)") from None
                if _WRITE_REFUSED.search(str(error)):
                    raise StoreError(READ_ONLY_MESSAGE) from None
                raise
            finally:
                self._rollback()
        if isinstance(result, list):
            raise StoreError("give one Cypher statement at a time")
        frame = result.get_as_df()
        for column in frame.columns[frame.dtypes == object]:
            frame[column] = frame[column].map(_graph_value)
        return frame

    # -- deleting ------------------------------------------------------------------------------
    def delete(self, run: str, level: int | None = None) -> int:
        self._writable()
        with self._operation():
            self._remove_leftovers(lambda _: None)
            query = f"MATCH (c:Checkpoint {{run: $run}}) WHERE {_COMPLETE} RETURN c.id" if level is None else (
                f"MATCH (c:Checkpoint {{run: $run}}) WHERE {_COMPLETE} AND c.level = $level RETURN c.id"
            )
            ids = [int(row[0]) for row in self._rows(query, {"run": run, "level": level})]
            if not ids:
                raise self.not_found(run, level)
            self._remove(ids)
        return len(ids)

    def _remove(self, ids: list[int]) -> None:
        """Remove checkpoints (and runs left without any) by id: all at once or not at all.

        Either their rows are deleted in one transaction, or, when that is dearer than copying back the
        synapses that stay (REBUILD_FACTOR) and the disk has room, those are copied into a new table,
        made durable, and swapped in with the deletion of the nodes in one small transaction."""
        if self._rebuild_pays(ids):
            self._rebuild(self._synapse_rows(without=ids), lambda: self._delete_nodes(ids))
            return
        with self._transaction():
            faults.reach("remove")
            for checkpoint_id in ids:
                self._run("MATCH (a:Neuron)-[s:SYNAPSE]->() WHERE a.id >= $lo AND a.id < $hi DELETE s", _key_range(checkpoint_id))
            self._delete_nodes(ids)

    def _rebuild_pays(self, ids: list[int]) -> bool:
        """Whether copying the other synapses into a new table beats deleting the rows of ``ids``."""
        deleted = sum(self._synapses_of(checkpoint_id) for checkpoint_id in ids)
        kept = self._total_synapses() - deleted
        return deleted > 0 and kept < REBUILD_FACTOR * deleted and self._fits(kept)

    def _synapses_of(self, checkpoint_id: int) -> int:
        return int(self._rows(
            "MATCH (a:Neuron)-[s:SYNAPSE]->() WHERE a.id >= $lo AND a.id < $hi RETURN count(s)", _key_range(checkpoint_id)
        )[0][0])

    def _total_synapses(self) -> int:
        return int(self._rows("MATCH ()-[s:SYNAPSE]->() RETURN count(s)")[0][0])

    def _delete_nodes(self, ids: list[int]) -> None:
        """Delete the neurons and Checkpoint nodes of ``ids`` and every run left without a checkpoint,
        inside the caller's transaction (their synapses already gone)."""
        for checkpoint_id in ids:
            self._run("MATCH (n:Neuron) WHERE n.id >= $lo AND n.id < $hi DETACH DELETE n", _key_range(checkpoint_id))
            self._run("MATCH (c:Checkpoint {id: $id}) DETACH DELETE c", {"id": checkpoint_id})
        self._run("MATCH (r:Run) WHERE NOT (r)-[:HAS_CHECKPOINT]->() DELETE r")

    def _mark_incomplete(self, ids: list[int]) -> None:
        self._run("MATCH (c:Checkpoint) WHERE list_contains($ids, c.id) SET c.incomplete = true", {"ids": ids})

    def _remove_leftovers(self, step: Progress, quietly: bool = False, tables_only: bool = False) -> None:
        """Remove what interrupted writes left: a rebuilt synapse table that was never swapped in, and
        (unless ``tables_only``) checkpoints marked incomplete. ``quietly``: best effort, after a failed
        write (a database that refused its checkpoint refuses this too, and the next open recovers it)."""
        try:
            for table in self._leftover_tables():
                with self._transaction():
                    self._run(_statement("DROP TABLE {table}", table=table))
            if tables_only:
                return
            ids = [int(row[0]) for row in self._rows("MATCH (c:Checkpoint) WHERE c.incomplete RETURN c.id")]
            if ids:
                step(f"removing {len(ids)} unfinished checkpoint(s) left by an interrupted write")
                self._remove(ids)
        except (StoreError, RuntimeError):
            if not quietly:
                raise

    def _leftover_tables(self) -> list[str]:
        return [name for (name,) in self._rows("CALL show_tables() RETURN name") if name.endswith(REBUILT)]

    # -- rebuilding the synapse table ------------------------------------------------------------
    def _synapse_rows(self, *, without: list[int] = (), flag: tuple | None = None, layer_from_source: bool = False) -> pa.Table:
        """Every synapse with all its properties as Arrow (``from``, ``to``, then the table's columns),
        leaving out those of the checkpoints ``without``; ``flag = (name, checkpoint_id, codes, encode)``
        sets the BOOL column ``name`` of that checkpoint's synapses to whether their code (``encode(from,
        to, ky, kx)``, see :class:`_SynapseCodes`) is listed, other checkpoints keeping their values.
        ``layer_from_source``: add the column ``layer`` as the group of each synapse's source neuron (the
        weight layer of a chain, for upgrading an archive written before synapses recorded it)."""
        columns = list(self._columns("SYNAPSE"))
        match = "MATCH (a:Neuron)-[s:SYNAPSE]->(b:Neuron) "
        if len(without):
            match += "WHERE NOT list_contains($ids, a.id / 4294967296) "
        projection = ", ".join(_statement("s.{name}", name=name) for name in columns)
        if layer_from_source:
            projection, columns = projection + ", CAST(a.`group`, 'INT16')", [*columns, "layer"]
        rows = self._run(
            match + "RETURN a.id, b.id, " + projection, {"ids": [int(i) for i in without]} if len(without) else {}
        ).get_as_arrow().rename_columns(["from", "to", *columns])
        if flag is not None:
            name, checkpoint_id, wanted, encode = flag
            origin, target = rows.column("from").to_numpy(), rows.column("to").to_numpy()
            mine = (origin >> 32) == checkpoint_id
            offsets = [rows.column(axis).fill_null(-1).to_numpy() for axis in ("ky", "kx")]
            listed = np.isin(encode(origin, target, *offsets), wanted) & mine
            if listed.sum() != len(wanted):
                raise InputError(f"{len(wanted) - int(listed.sum())} of the synapses to mark are not in the checkpoint")
            values = pc.if_else(pa.array(mine), pa.array(listed), rows.column(name))
            rows = rows.set_column(rows.column_names.index(name), name, values)
        return rows

    def _copy_rebuilt(self, kept: pa.Table, added: pa.Table | None = None, extra: Mapping[str, str] | None = None) -> None:
        """Create the rebuilt synapse table (the schema of SYNAPSE, defaults kept, plus the ``extra``
        columns name -> type) and copy ``kept`` (as :meth:`_synapse_rows` reads them) and ``added`` (as
        :func:`_synapse_table` makes them) into it, columns missing from either getting their defaults,
        inside the caller's transaction."""
        schema = self._rows("CALL table_info('SYNAPSE') RETURN name, type, `default expression`")
        schema = [tuple(column) for column in schema] + [(name, kind, "NULL") for name, kind in (extra or {}).items()]
        properties = ", ".join(
            _statement("{name} {kind}", name=name, kind=_Type(kind))
            + ("" if str(default).upper() == "NULL" else _statement(" DEFAULT {default}", default=_Type(default)))
            for name, kind, default in schema
        )
        self._run(_statement("CREATE REL TABLE {table}(FROM Neuron TO Neuron, ", table="SYNAPSE" + REBUILT) + properties + ")")
        columns = [("from", "INT64", None), ("to", "INT64", None), *schema]
        target = pa.schema([(name, _ARROW_TYPES[kind]) for name, kind, _ in columns])
        parts = [
            pa.table([rows.column(name).cast(_ARROW_TYPES[kind]) if name in rows.column_names
                      else _defaults(kind, default, rows.num_rows) for name, kind, default in columns], schema=target)
            for rows in (kept, added) if rows is not None and rows.num_rows
        ]
        if parts:
            faults.reach("synapses")
            self._run(_statement("COPY {table} FROM $rows", table="SYNAPSE" + REBUILT), {"rows": pa.concat_tables(parts)})

    def _swap_in_rebuilt(self) -> None:
        """Put the rebuilt table in place of SYNAPSE, inside the caller's (small) transaction."""
        faults.reach("swap")
        self._run("DROP TABLE SYNAPSE")
        self._run(_statement("ALTER TABLE {table} RENAME TO SYNAPSE", table="SYNAPSE" + REBUILT))

    def _rebuild(self, rows: pa.Table, also=lambda: None, extra: Mapping[str, str] | None = None) -> None:
        """Replace the synapse table by ``rows`` (as :meth:`_synapse_rows` gives them; ``extra``: columns
        to add, see :meth:`_copy_rebuilt`): copied into a new table and made durable, then swapped in, with
        ``also`` in the same small commit. Interrupted before that commit, the new table is dropped and the
        archive is as it was."""
        try:
            with self._transaction():
                self._copy_rebuilt(rows, extra=extra)
            with _uninterrupted(), self._transaction():
                self._swap_in_rebuilt()
                also()
        except BaseException:
            self._remove_leftovers(lambda _: None, quietly=True, tables_only=True)
            raise

    # -- write-back ----------------------------------------------------------------------------
    def set_neuron_properties(self, run: str, level: int, properties: Mapping[str, np.ndarray]) -> None:
        self._writable()
        checkpoint_id = self._checkpoint_id(run, level)
        if checkpoint_id is None:
            raise self.not_found(run, level)
        arrays = {name: pa.array(np.asarray(values)) for name, values in properties.items()}
        columns = []
        for name, values in arrays.items():
            kind = _LADYBUG_TYPES.get(str(values.type))
            if kind is None:
                raise StoreError(f"cannot store neuron property {name!r} of type {values.type}")
            columns += self._missing_columns("Neuron", [name], kind, NEURON_PROPERTIES, "neuron property")
        with self._operation():
            self._add_columns(columns)
            self._set_neuron_values(checkpoint_id, arrays)

    def _set_neuron_values(self, checkpoint_id: int, arrays: Mapping[str, pa.Array]) -> None:
        with self._transaction():
            for name, values in arrays.items():
                count = len(values)
                self._run(
                    _statement("UNWIND range(0, $n - 1) AS i MATCH (n:Neuron {{id: $base + i}}) "
                               "SET n.{name} = $values[i + 1]", name=name),
                    {"n": count, "base": int(_neuron_key(checkpoint_id, 0)), "values": values.to_pylist()},
                )

    def set_input_shape(self, run: str, shape: tuple[int, int, int], level: int | None = None) -> None:
        self._writable()
        shape = tuple(int(s) for s in shape)
        columns = "c.id, c.level, c.widths[1], c.architecture"
        query = f"MATCH (c:Checkpoint) WHERE {_COMPLETE} AND c.run = $run RETURN {columns}" if level is None else (
            f"MATCH (c:Checkpoint) WHERE {_COMPLETE} AND c.run = $run AND c.level = $level RETURN {columns}"
        )
        rows = self._rows(query, {"run": run, "level": level})
        if not rows:
            raise self.not_found(run, level)
        pixels = check_input_shape(run, shape, {each: inputs for _, each, inputs, _ in rows})
        channel, y, x = (axis.tolist() for axis in np.unravel_index(np.arange(pixels), shape))
        with self._transaction():
            for checkpoint_id, _, _, architecture in rows:
                self._run("MATCH (c:Checkpoint {id: $id}) SET c.input_shape = $shape, c.architecture = $architecture",
                          {"id": checkpoint_id, "shape": list(shape), "architecture": with_input_shape(architecture, shape)})
                self._run(
                    "UNWIND range(0, $n - 1) AS i MATCH (n:Neuron {id: $base + i}) "
                    "SET n.channel = $channel[i + 1], n.y = $y[i + 1], n.x = $x[i + 1]",
                    {"n": pixels, "base": int(_neuron_key(checkpoint_id, 0)), "channel": channel, "y": y, "x": x},
                )

    def set_synapse_flag(self, run: str, level: int, name: str, layer: np.ndarray, src: np.ndarray, dst: np.ndarray,
                         ky: np.ndarray | None = None, kx: np.ndarray | None = None) -> None:
        """Only the synapses whose flag changes are touched: a BOOL column added with ``DEFAULT false``
        (and every later ``COPY``) starts all synapses false, so marking a spanning forest updates about
        |V| rows one by one. When many rows change (a column holding nulls, say), the synapse table is
        rebuilt in bulk instead (:meth:`_rebuild`, chosen with UPDATE_REBUILD_FACTOR)."""
        self._writable()
        check_property_name(name, SYNAPSE_PROPERTIES, "synapse property")
        found = self._rows(
            f"MATCH (c:Checkpoint {{run: $run, level: $level}}) WHERE {_COMPLETE} RETURN c.id, c.widths, c.layer_names, c.architecture",
            {"run": run, "level": int(level)},
        )
        if not found:
            raise self.not_found(run, level)
        checkpoint_id, widths, names, architecture = found[0]
        architecture = parse_architecture(architecture)
        origin, target, ky, kx = flagged_synapses(widths, *layer_groups(architecture, len(names)), layer, src, dst, ky, kx)
        encode = _SynapseCodes(sum(widths), architecture)
        wanted = np.unique(encode(origin, target, ky, kx))
        with self._operation():
            kind = self._columns("SYNAPSE").get(name)
            if kind is None:
                with self._transaction():
                    self._run(_statement("ALTER TABLE SYNAPSE ADD {name} BOOL DEFAULT false", name=name))
            elif kind != "BOOL":
                raise StoreError(f"synapse property {name!r} is stored as {kind} in this archive, not BOOL")
            marked = self._run(
                _statement("MATCH (a:Neuron)-[s:SYNAPSE]->(b:Neuron) WHERE a.id >= $lo AND a.id < $hi "
                           "AND (s.{name} IS NULL OR s.{name}) RETURN a.id, b.id, s.ky, s.kx, s.{name}", name=name),
                _key_range(checkpoint_id),
            ).get_as_arrow()
            codes = encode(*(marked.column(i).fill_null(-1).to_numpy() for i in range(4)))
            is_true = marked.column(4).fill_null(False).to_numpy(zero_copy_only=False)
            to_true, to_false = np.setdiff1d(wanted, codes[is_true]), np.setdiff1d(codes, wanted)
            if self._total_synapses() < UPDATE_REBUILD_FACTOR * (len(to_true) + len(to_false)):
                self._rebuild(self._synapse_rows(flag=(name, checkpoint_id, wanted, encode)))
                return
            with self._transaction():
                for value, changes in ((False, to_false), (True, to_true)):
                    changed = self._set_synapses(name, value, checkpoint_id, encode.decode(changes))
                    if changed != len(changes):
                        raise InputError(f"{len(changes) - changed} of the synapses to mark are not in the checkpoint")

    def _set_synapses(self, name: str, value: bool, checkpoint_id: int, synapses: tuple[np.ndarray, ...]) -> int:
        """Set one property on these synapses (global source, target, ky, kx; -1 for Linear), row by row;
        returns how many matched."""
        if not len(synapses[0]):
            return 0
        base = int(_neuron_key(checkpoint_id, 0))
        origin, target, ky, kx = synapses
        rows = np.stack([origin + base, target + base, ky, kx], axis=1).tolist()
        return int(self._rows(
            _statement("UNWIND $rows AS p MATCH (a:Neuron {{id: p[1]}})-[s:SYNAPSE]->(b:Neuron {{id: p[2]}}) "
                       "WHERE coalesce(s.ky, -1) = p[3] AND coalesce(s.kx, -1) = p[4] "
                       "SET s.{name} = $value RETURN count(s)", name=name),
            {"rows": rows, "value": value},
        )[0][0])

    # -- checking ------------------------------------------------------------------------------
    def check(self, repair: bool = False) -> pd.DataFrame:
        from netarchive.store.ladybug_check import check_archive

        if repair:
            self._writable()
            with self._operation():
                return check_archive(self, repair=True)
        with self._reading():
            return check_archive(self, repair=False)


@contextmanager
def _uninterrupted():
    """Hold Ctrl-C back until the block ends, then raise it: for commits and checkpoints, which LadybugDB's
    binding would otherwise interrupt half done, and for the commit that publishes a write (past it the
    write is done). The binding interrupts a statement only while Python's default handler is set."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda *_: received.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


_CURVE_FIELDS = "c.run, c.level, c.curve_metric, c.curve_iteration, c.curve_value ORDER BY c.run, c.level"
_RUNS = (f"MATCH (r:Run)-[:HAS_CHECKPOINT]->(c:Checkpoint) WHERE {_COMPLETE} WITH DISTINCT r "
         "RETURN r.* ORDER BY r.name")
"""Constant statements: the curves of checkpoints (after a condition), the runs with complete checkpoints."""
_ARROW_CHUNK = 1 << 20
_CHECKPOINT_SYNAPSES = (
    "MATCH (a:Neuron)-[s:SYNAPSE]->(b:Neuron) WHERE a.id >= %d AND a.id < %d "
    "RETURN offset(id(a)), offset(id(b))%s"
)
_PACKED_SYNAPSES = "MATCH (a:Neuron)-[s:SYNAPSE]->() WHERE a.id >= %d AND a.id < %d RETURN s.packed"
_PACKED_COUNT = "MATCH (a:Neuron)-[s:SYNAPSE]->() WHERE a.id >= %d AND a.id < %d RETURN count(s.packed)"
_NEURON_OFFSETS = "MATCH (n:Neuron) WHERE n.id >= %d AND n.id < %d RETURN offset(id(n)), n.id"
_CONNECTIONS_OF = "MATCH (a:Neuron)-[s:CONNECTION]->() WHERE a.id >= $lo AND a.id < $hi RETURN count(s)"
"""Bulk reads by key range (the synapses of a checkpoint by their source neurons, packed or column by column;
the neurons of a checkpoint with their internal offsets); the bounds are integers computed, and the synapse columns after the two offsets
(``, s.w, s.layer`` and, for a network with convolutions, ``, s.ky, s.kx``) constant names,
from the checkpoint's id (never user text), formatted in because the Arrow path takes no parameters.
(That path does not return nulls as nulls in LadybugDB 0.22: use it only for columns without nulls, or
whose nulls are not read: ``ky``/``kx`` of Linear synapses.)"""

class _SynapseCodes:
    """One int64 per synapse of a checkpoint of ``neurons`` neurons: its source and target (global
    indices, or neuron keys, whose low 32 bits are the global index) and kernel offset (-1 for Linear),
    mixed-radix; ``decode`` gives them back as global indices."""

    def __init__(self, neurons: int, architecture: Mapping | None):
        kernels = [max(spec["conv"]["kernel"]) for spec in (architecture or {}).get("layers", []) if spec.get("conv")]
        self.neurons, self.kernel = int(neurons), max(kernels, default=0) + 1
        if self.neurons**2 * self.kernel**2 >= 2**62:
            raise StoreError(f"cannot mark synapses of a checkpoint of {self.neurons:,} neurons")

    def __call__(self, origin, target, ky, kx) -> np.ndarray:
        origin, target = (np.asarray(keys, dtype=np.int64) & 0xFFFFFFFF for keys in (origin, target))
        ky, kx = (np.asarray(offset, dtype=np.int64) + 1 for offset in (ky, kx))
        return ((origin * self.neurons + target) * self.kernel + ky) * self.kernel + kx

    def decode(self, codes: np.ndarray) -> tuple[np.ndarray, ...]:
        pair, kx = np.divmod(codes, self.kernel)
        pair, ky = np.divmod(pair, self.kernel)
        origin, target = np.divmod(pair, self.neurons)
        return origin, target, ky - 1, kx - 1


def _batches(checkpoints: Sequence[Checkpoint], limit: int) -> list[list[Checkpoint]]:
    """Consecutive groups of ``checkpoints`` of at most ``limit`` synapses (a bigger one alone)."""
    batches, size = [], 0
    for checkpoint in checkpoints:
        if not batches or size + checkpoint.edges > limit:
            batches.append([])
            size = 0
        batches[-1].append(checkpoint)
        size += checkpoint.edges
    return batches


def _key_range(checkpoint_id: int) -> dict[str, int]:
    return {"lo": int(_neuron_key(checkpoint_id, 0)), "hi": int(_neuron_key(checkpoint_id + 1, 0))}


def _neuron_table(checkpoint: Checkpoint, checkpoint_id: int) -> pa.Table:
    """The Neuron rows (model.columns.neuron_columns, absent values as nulls) keyed for this checkpoint."""
    n = checkpoint.neurons
    columns = {name: _nullable(values) for name, values in neuron_columns(checkpoint).items()}
    return pa.table({
        "id": _neuron_key(checkpoint_id, np.arange(n)),
        "run": pa.array([checkpoint.run] * n, pa.string()),
        "level": np.full(n, checkpoint.level, dtype=np.int64),
        **columns,
    })


def _synapse_table(checkpoint: Checkpoint, checkpoint_id: int) -> pa.Table:
    """Keys of both ends, weight, weight layer, kernel offset (null for Linear) and all of them packed
    (ladybug_packing.py; null when the checkpoint is too big to pack) of every synapse."""
    base = _neuron_key(checkpoint_id, 0)
    columns = synapse_columns(checkpoint)
    packed = Packing(checkpoint.widths, checkpoint.architecture(), len(checkpoint.layers)).pack(columns)
    return pa.table({
        "from": columns["src"] + base, "to": columns["dst"] + base, "w": columns["w"], "layer": columns["layer"],
        "ky": _nullable(columns["ky"]), "kx": _nullable(columns["kx"]),
        "packed": pa.nulls(len(columns["w"]), pa.int64()) if packed is None else packed,
    })


def _connection_table(checkpoint: Checkpoint, checkpoint_id: int) -> pa.Table:
    base = _neuron_key(checkpoint_id, 0)
    columns = connection_columns(checkpoint)
    return pa.table({"from": columns["src"] + base, "to": columns["dst"] + base,
                     "kind": pa.array(columns["kind"].tolist(), pa.string())})


def _batch_tables(checkpoints: Sequence[Checkpoint], ids: Sequence[int]) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The Neuron, SYNAPSE and CONNECTION rows of a batch of checkpoints with their ids."""
    pairs = list(zip(checkpoints, ids))
    return tuple(pa.concat_tables([rows(c, i) for c, i in pairs]) for rows in (_neuron_table, _synapse_table, _connection_table))


def _same_names(names: Sequence[str]) -> dict[str, str]:
    """A property map giving each of ``names`` (``LOAD FROM`` variables) to the property of that name."""
    return {name: name for name in names}


def _nullable(values: np.ndarray) -> pa.Array:
    """A column of model.columns (-1 or NaN where absent) with nulls there."""
    values = np.asarray(values)
    return pa.array(values, mask=np.isnan(values) if values.dtype.kind == "f" else values < 0)


def _defaults(kind: str, default, rows: int) -> pa.Array:
    """A column of ``rows`` copies of a column's DEFAULT (as table_info gives it), for rows copied in
    without it."""
    if default is None or str(default).upper() == "NULL":
        return pa.nulls(rows, _ARROW_TYPES[kind])
    value = {"true": True, "false": False}.get(str(default).lower(), default)
    return pa.repeat(pa.scalar(value).cast(_ARROW_TYPES[kind]), rows)


def _graph_value(value):
    """LadybugDB's nodes, relationships and paths (dicts with ``_ID``, ``_LABEL``, ``_SRC``, ``_NODES``, …) in
    the form of ``Store.cypher``: the internal ids, a synapse's ``packed`` (a storage detail, not on Neo4j)
    and the null columns of other labels left out."""
    if isinstance(value, list):
        return [_graph_value(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "_NODES" in value and "_RELS" in value:
        nodes = [_graph_value(node) for node in value["_NODES"]]
        items = nodes[:1]
        for relationship, node in zip(value["_RELS"], nodes[1:]):
            items += [_graph_value(relationship), node]
        return {"_path": items}
    if "_LABEL" in value and "_ID" in value:
        kind = "_type" if "_SRC" in value else "_label"
        internal = {"_ID", "_LABEL", "_SRC", "_DST", "id", "packed"}
        return {kind: value["_LABEL"], **{k: v for k, v in value.items() if k not in internal and v is not None}}
    return {key: _graph_value(item) for key, item in value.items()}


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


class _DiskFull(StoreError):
    """A statement failed for want of disk space: the write stops there, and what it left is removed by the
    next write or ``check --repair`` (a clean-up now would commit, fail again, and leave LadybugDB 0.22 a
    log it aborts the process on when it closes)."""


_SHORT_WRITE = re.compile(r"Cannot write to file.*numBytesToWrite: (\d+) numBytesWritten: (?!\1\b)\d+")


def _statement_error(error: RuntimeError, location: str) -> StoreError:
    """A statement's failure as one line; a full disk (which LadybugDB may report as a short write with
    errno 0) says what became of the write."""
    if "No space left" in str(error) or _SHORT_WRITE.search(str(error)):
        written = re.search(r"path: (\S+)", str(error))
        where = f" writing {Path(written.group(1)).name}" if written else ""
        return _DiskFull(
            f"the disk holding the archive at {location} is full (no space left on device{where}): nothing of the "
            "unfinished write is visible; free some space, then the next write or `netarchive check --repair` "
            "removes what it left"
        )
    return StoreError(first_line(error))
