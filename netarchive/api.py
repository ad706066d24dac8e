"""The Python API that the ``netarchive`` command wraps, for notebooks and scripts.

Example::

    import netarchive
    with netarchive.open("~/archives/imp") as archive:
        archive.ingest(["runs/seed0"], run="seed0", input_shape=(1, 8, 8))
        archive.checkpoints(run="seed0")            # DataFrame, one row per level
        ckpt = archive.checkpoint("seed0", 3)       # netarchive.model.Checkpoint
        archive.cypher("MATCH (c:Checkpoint {run: $run}) RETURN c.level, c.sparsity", run="seed0")
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from netarchive import loaders
from netarchive.errors import AlreadyArchived
from netarchive.export import export_parquet
from netarchive.model import Checkpoint
from netarchive.store import Store, open_store


def open(store: str | os.PathLike | None = None, *, read_only: bool = False, **server) -> "Archive":  # noqa: A001
    """Open (creating it if needed, unless ``read_only``) the archive at ``store``.

    ``store`` is a directory for the embedded archive or a ``neo4j://`` URI; by default
    ``$NETARCHIVE_STORE`` or ``~/.local/share/netarchive/archive``. ``server``: ``user``, ``password``,
    ``database`` for a Neo4j server (default ``$NEO4J_USERNAME``, ``$NEO4J_PASSWORD``, ``neo4j``).
    """
    return Archive(open_store(store, read_only=read_only, **server))


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
        run: str,
        *,
        level: int | None = None,
        replace: bool = False,
        progress: Callable[[str], None] | None = None,
        **options,
    ) -> pd.DataFrame:
        """Load checkpoint files or run directories and archive them as run ``run``.

        Every file is loaded and checked before anything is written, so a bad tensor in the last level
        leaves the archive untouched; each checkpoint is then written whole or not at all. ``options`` are
        those of :func:`netarchive.loaders.load` (``mask``, ``layers``, ``input_shape``, ``metrics``,
        ``meta``, ``which``, ``activation``). Returns one summary row per archived checkpoint.
        """
        step = progress or (lambda _: None)
        checkpoints = loaders.load(paths, run=run, level=level, progress=step, **options)
        if not replace:
            self._refuse_archived(run, [checkpoint.level for checkpoint in checkpoints])
        for checkpoint in checkpoints:
            step(f"writing level {checkpoint.level}")
            self.store.write(checkpoint, replace=replace, progress=step)
        return summarize(checkpoints)

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

    def checkpoints(self, run: str | None = None) -> pd.DataFrame:
        """One row per archived checkpoint: run, level, layers, neurons, edges, sparsity, metrics."""
        return self.store.checkpoints(run)

    def levels(self, run: str) -> list[int]:
        return self.store.levels(run)

    def checkpoint(self, run: str, level: int) -> Checkpoint:
        """Read one checkpoint back into the model."""
        return self.store.read(run, level)

    def cypher(self, query: str, **params) -> pd.DataFrame:
        """Run one read-only Cypher statement; pass user values as keyword parameters (``$name``)."""
        return self.store.cypher(query, params)

    def export(self, directory: str | os.PathLike, run: str | None = None, progress=None) -> pd.DataFrame:
        """Write the archive (or one run) as Parquet for pandas; see :func:`netarchive.export.export_parquet`."""
        return export_parquet(self, directory, run=run, progress=progress)

    def rm(self, run: str, level: int | None = None) -> int:
        """Delete one checkpoint, or a whole run; returns how many checkpoints were removed."""
        return self.store.delete(run, level)

    def set_metrics(self, run: str, level: int, metrics: Mapping[str, float]) -> None:
        """Add or overwrite numeric metrics (accuracy, loss, …) of an archived checkpoint."""
        self.store.set_metrics(run, level, metrics)

    def set_activation(self, run: str, activation: str) -> None:
        """Record the nonlinearity between the hidden layers of ``run`` (relu, tanh, sigmoid, gelu, identity)."""
        self.store.set_activation(run, activation)

    def set_neuron_properties(self, run: str, level: int, properties: Mapping) -> None:
        """Write per-neuron analysis results onto the graph (see ``Store.set_neuron_properties``)."""
        self.store.set_neuron_properties(run, level, properties)

    def set_input_shape(self, run: str, shape: tuple[int, int, int], level: int | None = None) -> None:
        """Declare the inputs of an archived run (or one level) as ``(C, H, W)`` pixels, for locality analyses."""
        self.store.set_input_shape(run, shape, level)

    def close(self) -> None:
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def summarize(checkpoints: Sequence[Checkpoint]) -> pd.DataFrame:
    """The listing row of each in-memory checkpoint, as ``Store.checkpoints`` gives it for stored ones."""
    rows = [
        {
            "run": c.run,
            "level": c.level,
            "layers": len(c.layers),
            "neurons": c.neurons,
            "edges": c.edges,
            "sparsity": c.sparsity,
            **c.metrics,
        }
        for c in checkpoints
    ]
    return pd.DataFrame(rows)
