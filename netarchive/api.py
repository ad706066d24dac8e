"""The Python API that the ``netarchive`` command wraps, for notebooks and scripts.

Example::

    import netarchive
    with netarchive.open("~/archives/imp") as archive:
        archive.ingest(["runs/seed0"], run="seed0", input_shape=(1, 8, 8))
        archive.ingest(["runs/resnet"], run="resnet", model="netarchive.zoo.openlth:cifar_resnet_20",
                       input_shape=(3, 32, 32))    # the architecture traced from the model
        archive.ingest_model(model, run="live", level=3)   # a live nn.Module, masks included
        archive.ingest(["open_lth_data/lottery_0d3e..."])  # every replicate and branch, named from the hash
        archive.checkpoints(run="seed0")            # DataFrame, one row per level
        archive.select_runs(["seed*"], {"dataset_name": "mnist"})  # names, by glob and label
        ckpt = archive.checkpoint("seed0", 3)       # netarchive.model.Checkpoint
        archive.cypher("MATCH (c:Checkpoint {run: $run}) RETURN c.level, c.sparsity", run="seed0")
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import types
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from functools import partial

import pandas as pd

from netarchive import loaders, selection
from netarchive.analysis.percolation import RANDOM_ORDERS
from netarchive.analysis.summary import COLUMNS, summary_row
from netarchive.cache import AnalysisCache
from netarchive.errors import AlreadyArchived, InputError
from netarchive.export import export_parquet
from netarchive.model import Checkpoint, sample_shape
from netarchive.store import Store, open_store, preflight
from netarchive.store.base import CHECKPOINT_FIELDS, problem_table


def open(store: str | os.PathLike | None = None, *, read_only: bool = False, wait: float | None = None, **server) -> "Archive":  # noqa: A001
    """Open (creating it if needed, unless ``read_only``) the archive at ``store``.

    ``store`` is a directory for the embedded archive or a ``neo4j://`` URI; by default
    ``$NETARCHIVE_STORE`` or ``~/.local/share/netarchive/archive``. ``server``: ``user``, ``password``,
    ``database`` for a Neo4j server (default ``$NEO4J_USERNAME``, ``$NEO4J_PASSWORD``, ``neo4j``).
    ``wait``: seconds a read waits while another process commits a write to an archive directory
    (default ``$NETARCHIVE_READ_RETRY_SECONDS`` or 30).
    """
    return Archive(open_store(store, read_only=read_only, wait=wait, **server))


def check(store: str | os.PathLike | None = None, *, repair: bool = False, wait: float | None = None, **server) -> pd.DataFrame:
    """``netarchive check``: verify the archive at ``store``, including what keeps it from opening; one
    row per problem (``Store.check``'s columns). With ``repair``, remove incomplete or damaged
    checkpoints (named in the rows, to be ingested again) and mend what else can be mended.

    >>> netarchive.check("out/archive")                  # doctest: +SKIP
    Empty DataFrame (a sound archive)
    """
    problems, openable = preflight(store, repair=repair)
    if not openable:
        return problems
    with open(store, read_only=not repair, wait=wait, **server) as archive:
        return pd.concat([problems, archive.check(repair=repair)], ignore_index=True)


class Archive:
    """An open archive: ingest checkpoints, list them, read them back as models, query them."""

    def __init__(self, store: Store):
        self.store = store

    @property
    def location(self) -> str:
        return self.store.location

    def ingest(
        self,
        paths: Sequence[str | os.PathLike],
        run: str | None = None,
        *,
        level: int | None = None,
        replace: bool = False,
        progress: Callable[[str], None] | None = None,
        **options,
    ) -> pd.DataFrame:
        """Load checkpoint files or run directories and archive them as run ``run``; an OpenLTH tree
        gives its own runs (``run`` names or prefixes them, see :mod:`netarchive.loaders.openlth`).

        Every file is loaded and checked before anything is written, so a bad tensor in the last level
        leaves the archive untouched; each checkpoint is then written whole or not at all. ``options`` are
        those of :func:`netarchive.loaders.load` (``model``, ``mask``, ``layers``, ``input_shape``,
        ``metrics``, ``meta``, ``which``, ``activation``). Returns one summary row per archived checkpoint.
        """
        step = progress or (lambda _: None)
        checkpoints = loaders.load(paths, run=run, level=level, progress=step, **options)
        self._archive(checkpoints, replace, step)
        return listing_rows(checkpoints)

    def ingest_model(
        self,
        model,
        *,
        run: str,
        level: int,
        input_shape: Sequence[int] | None = None,
        metrics: Mapping[str, float] | None = None,
        meta: Mapping[str, str] | None = None,
        curves: Mapping[str, tuple[Sequence[int], Sequence[float]]] | None = None,
        replace: bool = False,
        traces=None,
    ) -> pd.DataFrame:
        """Archive a live ``nn.Module`` (from a training script or notebook) as level ``level`` of ``run``,
        no files involved: its architecture traced on samples of ``input_shape`` (C,H,W or C,L; needed
        for convolutions), its weights with their masks (``torch.nn.utils.prune`` included), and the
        level's training ``curves`` (``metric -> (iterations, values)``). The module is left as it was (its
        training mode too). Returns the summary row, as :meth:`ingest`; :mod:`netarchive.integrations` has
        ready hooks for training loops. ``traces`` (a :class:`netarchive.loaders.traced.TraceCache`) reuses
        the traced architecture of an earlier level while the module's structure is unchanged.
        """
        from netarchive.loaders.traced import from_module

        if not run:
            raise InputError("give the run a name")
        if not isinstance(level, int) or level < 0:
            raise InputError(f"level {level!r}: a level counts pruning rounds, so it is an integer, 0 or more")
        checkpoint = from_module(model, run=run, level=level, input_shape=input_shape, metrics=metrics, meta=meta,
                                 curves=curves, traces=traces)
        self._archive([checkpoint], replace)
        return listing_rows([checkpoint])

    def _archive(self, checkpoints: Sequence[Checkpoint], replace: bool, step: Callable[[str], None] | None = None) -> None:
        """Write the checkpoints, refusing them all when one (unless ``replace``) is archived."""
        step = step or (lambda _: None)
        if not replace:
            for name in dict.fromkeys(checkpoint.run for checkpoint in checkpoints):
                self._refuse_archived(name, [checkpoint.level for checkpoint in checkpoints if checkpoint.run == name])
        step(f"writing {len(checkpoints)} checkpoint(s)")
        self.store.write_many(checkpoints, replace=replace, progress=step)
        if replace:
            self._prune_cache()

    def _refuse_archived(self, run: str, levels: list[int]) -> None:
        archived = set(self.store.checkpoints(run)["level"].tolist())
        clash = sorted(archived.intersection(levels))
        if clash:
            raise AlreadyArchived(
                f"run {run!r} already has level(s) {', '.join(map(str, clash))} in the archive "
                "(use --replace to overwrite them)"
            )

    def write(self, checkpoint: Checkpoint, *, replace: bool = False) -> None:
        """Archive a model built in Python (see :class:`netarchive.model.Checkpoint`)."""
        self.store.write(checkpoint, replace=replace)
        if replace:
            self._prune_cache()

    def checkpoints(self, run: str | None = None) -> pd.DataFrame:
        """One row per archived checkpoint: run, level, layers, neurons, edges, sparsity, metrics."""
        return self.store.checkpoints(run)

    @property
    def backend(self) -> str:
        """The database behind the archive and its version ("LadybugDB 0.22.0", "Neo4j 5.26.0")."""
        return self.store.backend

    def levels(self, run: str) -> list[int]:
        return self.store.levels(run)

    def unfinished(self) -> pd.DataFrame:
        """``run, level`` of checkpoints left unfinished by an interrupted write, hidden from every read."""
        return self.store.unfinished()

    def check(self, repair: bool = False) -> pd.DataFrame:
        """Verify the archive and its cached analyses: one row per problem (see :func:`check`); with
        ``repair`` (an archive opened for writing) mend what can be mended."""
        found = self.store.check(repair=repair)
        cached = problem_table(self.cache.problems(self.store.versions().values()), repair)
        return pd.concat([found, cached], ignore_index=True) if len(cached) else found

    def runs(self) -> pd.DataFrame:
        """One row per run: ``run``, ``activation`` and its labels (meta, e.g. OpenLTH's hparams)."""
        return self.store.runs()

    def with_labels(self, table: pd.DataFrame) -> pd.DataFrame:
        """``table`` (with a ``run`` column) with the labels (meta) of each run as columns after its own."""
        labels = self.runs().drop(columns=["activation"], errors="ignore")
        labels = labels[[c for c in labels.columns if c == "run" or c not in table.columns]]
        return table.merge(labels, on="run", how="left")

    def select_runs(
        self,
        patterns: Sequence[str] | None = None,
        where: Mapping[str, str] | None = None,
        *,
        announce: Callable[[str, list[str]], None] | None = None,
    ) -> list[str]:
        """The names of the runs matching any of ``patterns`` (names, globs like ``seed*``, or ``all``;
        none means every run) and every label of ``where`` (``{"dataset_name": "cifar10"}``); see
        :mod:`netarchive.selection`. ``announce(asked, runs)`` hears when a glob, ``all`` or a label chose
        several runs."""
        if isinstance(patterns, str):
            patterns = [patterns]
        return selection.select(self.runs(), patterns, where, self.location, announce)

    def curves(self, runs: Sequence[str] | None = None) -> pd.DataFrame:
        """The training curves of ``runs`` (default: all) as one tidy table: run, level, metric,
        iteration, value (from an OpenLTH ``logger``: every metric at every logged iteration)."""
        if runs is not None:
            for run in runs:
                self.levels(run)  # raises NotFound, saying which runs exist
        return self.store.curves(None if runs is None else list(runs))

    def checkpoint(self, run: str, level: int) -> Checkpoint:
        """Read one checkpoint back into the model."""
        return self.store.read(run, level)

    def cypher(self, query: str, **params) -> pd.DataFrame:
        """Run one read-only Cypher statement; pass user values as keyword parameters (``$name``)."""
        return self.store.cypher(query, params)

    def export(self, directory: str | os.PathLike, run: str | None = None, progress=None, analyses: bool = False) -> pd.DataFrame:
        """Write the archive (or one run) as Parquet for pandas, with ``analyses`` also the tables of every
        analysis; see :func:`netarchive.export.export_parquet`."""
        return export_parquet(self, directory, run=run, progress=progress, analyses=analyses)

    def rm(self, run: str, level: int | None = None) -> int:
        """Delete one checkpoint, or a whole run; returns how many checkpoints were removed."""
        removed = self.store.delete(run, level)
        self._prune_cache()
        return removed

    # -- analyses, cached --------------------------------------------------------------------------
    @property
    def cache(self) -> AnalysisCache:
        return AnalysisCache(self.store.cache_dir)

    def _prune_cache(self) -> None:
        self.cache.prune(self.store.versions().values())

    def analyze(self, function: Callable[..., pd.DataFrame], run: str, level: int, **options) -> pd.DataFrame:
        """``function(checkpoint, **options)`` on (run, level), cached in the archive: asked again about an
        unchanged checkpoint it answers without reading the checkpoint.

        >>> from netarchive.analysis.components import components
        >>> archive.analyze(components, "seed0", 3)          # doctest: +SKIP
        """
        version = self.store.versions().get((run, int(level)))
        if version is None:  # raises NotFound with the right message, unless it was written since: then uncached
            return function(self.checkpoint(run, level), **options)
        return self.cache.get(version, _name(function), options, lambda: function(self.checkpoint(run, level), **options))

    def summary(
        self,
        runs: Sequence[str] | None = None,
        *,
        jobs: int = 1,
        samples: int = RANDOM_ORDERS,
        seed: int = 0,
        progress: Callable[[int, int], None] | None = None,
    ) -> pd.DataFrame:
        """One row per checkpoint of ``runs`` (default: all) with every scalar of the analyses
        (:mod:`netarchive.analysis.summary`) and the stored metrics; ``jobs`` > 1 computes checkpoints in
        parallel processes. Rows already computed for unchanged checkpoints come from the cache."""
        listing = self.checkpoints()
        if runs is not None:
            for run in runs:
                if run not in set(listing["run"]):
                    self.levels(run)  # raises NotFound
            listing = listing[listing["run"].isin(runs)]
        versions = self.store.versions()
        options = {"samples": samples, "seed": seed}
        keys = [(run, int(level)) for run, level in zip(listing["run"], listing["level"])]
        if not keys:
            return pd.DataFrame(columns=["run", "level", "sparsity", *COLUMNS])
        name, tick = _name(summary_row), progress or (lambda done, total: None)
        together = self.cache.set_version((run, level, versions[run, level]) for run, level in keys)
        table = self.cache.lookup(together, name, options)  # the rows of exactly these checkpoints, in one file
        if table is None:
            table = self._summary_rows(keys, versions, options, jobs, tick)
            self.cache.store(together, name, options, table)
        else:
            tick(len(keys), len(keys))
        metrics = listing.drop(columns=[c for c in CHECKPOINT_FIELDS if c not in ("run", "level")])
        return self.with_labels(table.merge(metrics, on=["run", "level"], how="left"))

    def _summary_rows(self, keys, versions, options, jobs, tick) -> pd.DataFrame:
        """The summary rows of the checkpoints ``keys``, each from the cache or computed and cached."""
        rows = {key: self.cache.lookup(versions[key], _name(summary_row), options) for key in keys}
        missing = [key for key in keys if rows[key] is None]
        done = len(keys) - len(missing)
        tick(done, len(keys))
        checkpoints = (self.checkpoint(run, level) for run, level in missing)
        for key, row in zip(missing, _map(partial(summary_row, **options), checkpoints, jobs)):
            self.cache.store(versions[key], _name(summary_row), options, row)
            rows[key] = row
            done += 1
            tick(done, len(keys))
        return pd.concat([rows[key] for key in keys], ignore_index=True)

    def set_metrics(self, run: str, level: int, metrics: Mapping[str, float]) -> None:
        """Add or overwrite numeric metrics (accuracy, loss, …) of an archived checkpoint."""
        self.store.set_metrics(run, level, metrics)

    def set_activation(self, run: str, activation: str) -> None:
        """Record the nonlinearity between the hidden layers of ``run`` (relu, tanh, sigmoid, gelu, identity)."""
        self.store.set_activation(run, activation)

    def set_neuron_properties(self, run: str, level: int, properties: Mapping) -> None:
        """Write per-neuron analysis results onto the graph (see ``Store.set_neuron_properties``)."""
        self.store.set_neuron_properties(run, level, properties)

    def set_synapse_flag(self, run: str, level: int, name: str, layer, src, dst, ky=None, kx=None) -> None:
        """Mark the listed synapses ``(layer, src, dst, ky, kx)`` with the boolean property ``name`` (the rest
        of the checkpoint false), e.g. ``in_msf`` for the spanning forest (see ``Store.set_synapse_flag``)."""
        self.store.set_synapse_flag(run, level, name, layer, src, dst, ky, kx)

    def init(self) -> None:
        """Create the archive's schema (on Neo4j: constraints and indexes); writes do it themselves too."""
        self.store.init()

    def set_input_shape(self, run: str, shape: tuple[int, int, int], level: int | None = None) -> None:
        """Declare the inputs of an archived run (or one level) as ``(C, H, W)`` pixels (or ``(C, L)``), for
        locality analyses."""
        self.store.set_input_shape(run, sample_shape(shape), level)

    def close(self) -> None:
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _name(function) -> str:
    return f"{function.__module__.rsplit('.', 1)[-1]}.{function.__qualname__}"


def _map(function, items, jobs: int):
    """``map`` in ``jobs`` processes (started fresh, so no open archive or thread is inherited, and without
    the caller's script: see :func:`_without_main_script`)."""
    if jobs <= 1:
        yield from map(function, items)
        return
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = deque()
        for item in items:  # at most 2 × jobs items in flight: checkpoints are read as they are needed
            with _without_main_script():  # a worker starts inside submit
                pending.append(pool.submit(function, item))
            if len(pending) >= 2 * jobs:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@contextmanager
def _without_main_script():
    """Worker processes started inside do not run the caller's script again.

    A spawned interpreter first runs the parent's ``__main__`` file again (as ``__mp_main__``) so that
    functions defined there can be unpickled; a script without an ``if __name__ == "__main__":`` guard
    would then open the archive again in every worker ("in use by another netarchive") and break the pool.
    The workers only run netarchive's own functions on checkpoints, so they need nothing from the script:
    while they start, ``__main__`` is a blank module that names no file to run."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def listing_rows(checkpoints: Sequence[Checkpoint]) -> pd.DataFrame:
    """The listing row of each in-memory checkpoint, as ``Store.checkpoints`` gives it for stored ones."""
    rows = [
        {
            "run": c.run,
            "level": c.level,
            "layers": len(c.layers),
            "neurons": c.neurons,
            "edges": c.edges,
            "sparsity": c.sparsity,
            "architecture_source": c.architecture_source,
            **c.metrics,
        }
        for c in checkpoints
    ]
    return pd.DataFrame(rows)
