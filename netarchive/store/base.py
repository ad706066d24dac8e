"""The one store interface: every backend (embedded LadybugDB, Neo4j server) implements it.

The CLI, the API and the analyses only ever see a :class:`Store`; no other module imports a backend.
Rules every backend keeps:

- ``write`` is all or nothing: after an error or an interrupt the archive is as it was before;
- ``cypher`` is read-only and takes user values as parameters only;
- write-back of analysis results overwrites earlier values, never duplicates them.
"""
from __future__ import annotations

import re
from pathlib import Path
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from netarchive.errors import InputError, NotFound
from netarchive.model import Checkpoint

Progress = Callable[[str], None]
"""Called with a short description of each step of a long write (``"synapses"``, ``"commit"``, ...)."""

CHECKPOINT_FIELDS = ("run", "level", "layers", "neurons", "edges", "sparsity")
"""The columns every checkpoint listing starts with; the stored metrics follow."""
CURVE_PROPERTIES = ("curve_metric", "curve_iteration", "curve_value")
"""The three parallel lists on a Checkpoint node that hold its training curves (``Checkpoint.curves``),
one entry per logged point; never listed as metrics."""
CURVE_COLUMNS = ("run", "level", "metric", "iteration", "value")


class Store(ABC):
    """An archive of checkpoints, opened for reading or writing."""

    location: str
    """Where the archive lives (a path or a server URI), for messages and ``ls``."""

    @abstractmethod
    def write(self, checkpoint: Checkpoint, *, replace: bool = False, progress: Progress | None = None) -> None:
        """Archive one checkpoint, whole or not at all.

        Raises AlreadyArchived when (run, level) exists and ``replace`` is false; with ``replace`` the old
        checkpoint is swapped for the new one in the same transaction.
        """

    @abstractmethod
    def read(self, run: str, level: int) -> Checkpoint:
        """Read one checkpoint back into the model (raises NotFound)."""

    @abstractmethod
    def checkpoints(self, run: str | None = None) -> pd.DataFrame:
        """One row per checkpoint, ordered by run and level: CHECKPOINT_FIELDS then the metrics."""

    @abstractmethod
    def runs(self) -> pd.DataFrame:
        """One row per run that has checkpoints, ordered by name: ``run``, ``activation``, then its labels
        (meta keys, strings; missing where a run lacks one)."""

    @abstractmethod
    def curves(self, runs: list[str] | None = None) -> pd.DataFrame:
        """The training curves of the checkpoints of ``runs`` (default: all) as a tidy table of
        CURVE_COLUMNS, ordered by run, level, then as stored (metric by metric, iterations ascending)."""

    @abstractmethod
    def versions(self) -> dict[tuple[str, int], str]:
        """A token per archived (run, level) that changes whenever the checkpoint is written again: what
        cached analyses are keyed by."""

    @property
    @abstractmethod
    def cache_dir(self) -> Path:
        """Where cached analysis tables of this archive are kept."""

    @abstractmethod
    def delete(self, run: str, level: int | None = None) -> int:
        """Remove a checkpoint, or every checkpoint of a run (and the run); returns how many were removed."""

    @abstractmethod
    def cypher(self, query: str, params: Mapping[str, object] | None = None) -> pd.DataFrame:
        """Run one read-only Cypher statement with parameters; raises StoreError on invalid Cypher."""

    @abstractmethod
    def set_neuron_properties(self, run: str, level: int, properties: Mapping[str, np.ndarray]) -> None:
        """Write analysis results onto the neurons of a checkpoint.

        Each array holds one value per neuron in global order (see ``Checkpoint.offsets``); a property
        written again replaces the old values.
        """

    @abstractmethod
    def set_metrics(self, run: str, level: int, metrics: Mapping[str, float]) -> None:
        """Add or overwrite numeric metrics (accuracy, loss, …) of an archived checkpoint."""

    @abstractmethod
    def set_activation(self, run: str, activation: str) -> None:
        """Record the nonlinearity between the hidden layers of a run (used by forward passes)."""

    @abstractmethod
    def set_synapse_flag(self, run: str, level: int, name: str, layer: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
        """Mark synapses of a checkpoint with the boolean property ``name``: true for the listed ones
        (``layer`` = index of the source layer, ``src``/``dst`` = indices within their layers), false for
        every other synapse of the checkpoint (e.g. ``in_msf`` for the maximum spanning forest)."""

    @abstractmethod
    def set_input_shape(self, run: str, shape: tuple[int, int, int], level: int | None = None) -> None:
        """Record that the inputs of a checkpoint (or of every checkpoint of the run) are ``(C, H, W)`` pixels.

        Sets the checkpoint's ``input_shape`` and the ``channel``, ``y``, ``x`` of its input neurons (row-major,
        as ``Checkpoint.input_coordinates``), all checkpoints in one transaction; raises InputError when
        C·H·W differs from the number of inputs.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the archive (and its lock)."""

    def init(self) -> None:
        """Create the archive's schema (constraints, indexes) if missing; idempotent. The embedded archive
        does so when opened for writing, a server archive before its first write or on ``netarchive init``."""

    def levels(self, run: str) -> list[int]:
        """The archived levels of a run, ascending (raises NotFound for an unknown run)."""
        table = self.checkpoints(run)
        if table.empty:
            raise self.not_found(run)
        return [int(level) for level in table["level"]]

    def not_found(self, run: str, level: int | None = None) -> NotFound:
        """The error for an unknown run (or level of a run), saying which runs (or levels) exist."""
        listing = self.checkpoints()
        levels = listing.loc[listing["run"] == run, "level"].tolist()
        if level is None or not levels:
            return NotFound.run(run, self.location, listing["run"].unique().tolist())
        return NotFound.checkpoint(run, level, self.location, levels)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()



_PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def check_property_name(name: str, reserved: frozenset[str], what: str) -> str:
    """Refuse a user-chosen property name that is not a plain identifier or that shadows a schema field.

    Property names become Cypher identifiers (a column in LadybugDB, a key in Neo4j), which cannot be
    passed as parameters; only names this check accepts are ever put into a statement.
    """
    if not _PROPERTY_NAME.fullmatch(name):
        raise InputError(f"{what} name {name!r} must be a letter or _ followed by letters, digits or _")
    if name.lower() in reserved:
        raise InputError(f"{what} name {name!r} is taken by the archive's schema; choose another")
    return name


def check_input_shape(run: str, shape: tuple[int, int, int], inputs_by_level: Mapping[int, int]) -> int:
    """Refuse a ``(C, H, W)`` whose pixel count differs from the inputs of any of the levels; the pixels."""
    pixels = int(np.prod(shape))
    for level, inputs in inputs_by_level.items():
        if int(inputs) != pixels:
            raise InputError(
                f"input shape {','.join(map(str, shape))} has {pixels} pixels but level {level} of run {run!r} "
                f"has {inputs} inputs"
            )
    return pixels


def curve_properties(checkpoint: Checkpoint) -> dict[str, list]:
    """``Checkpoint.curves`` flattened into the three CURVE_PROPERTIES lists ({} without curves)."""
    if not checkpoint.curves:
        return {}
    metric, iteration, value = [], [], []
    for name, (iterations, values) in checkpoint.curves.items():
        metric += [name] * len(iterations)
        iteration += iterations.tolist()
        value += values.tolist()
    return dict(zip(CURVE_PROPERTIES, (metric, iteration, value)))


def curves_from_properties(metric, iteration, value) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The inverse of :func:`curve_properties` (None, as stored for a checkpoint without curves, is {})."""
    if not metric:
        return {}
    metric, iteration, value = np.asarray(metric, dtype=object), np.asarray(iteration, np.int64), np.asarray(value, np.float64)
    return {name: (iteration[metric == name], value[metric == name]) for name in dict.fromkeys(metric)}


def curve_table(rows) -> pd.DataFrame:
    """``(run, level, metrics, iterations, values)`` rows, one per checkpoint, as a tidy CURVE_COLUMNS table."""
    frames = [
        pd.DataFrame({"run": run, "level": int(level), "metric": list(metric), "iteration": list(iteration), "value": list(value)})
        for run, level, metric, iteration, value in rows if metric
    ]
    if not frames:
        return pd.DataFrame({"run": pd.Series(dtype=object), "level": pd.Series(dtype="int64"), "metric": pd.Series(dtype=object),
                             "iteration": pd.Series(dtype="int64"), "value": pd.Series(dtype="float64")})
    table = pd.concat(frames, ignore_index=True)
    return table.astype({"level": "int64", "iteration": "int64", "value": "float64"})
