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

READ_ONLY_MESSAGE = (
    "Cypher runs read-only here (it cannot create, change or delete anything); to put analysis results on the "
    "graph use an analysis's --write (e.g. `netarchive query components --write`), to change the archive "
    "`ingest`, `rm` or `set-activation`"
)
"""What both backends say, in netarchive's words, when a Cypher statement tries to write."""


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
        """Run one read-only Cypher statement with parameters; raises StoreError on invalid Cypher, and
        StoreError(READ_ONLY_MESSAGE) on a statement that writes.

        Graph values come back the same from every backend: a node as ``{"_label": "Neuron", **properties}``,
        a relationship as ``{"_type": "SYNAPSE", **properties}`` (absent properties left out, no internal
        ids), a path as ``{"_path": [node, relationship, node, …]}``."""

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

    @property
    def backend(self) -> str:
        """The database behind the archive and its version, for reports ("LadybugDB 0.22.0")."""
        return type(self).__name__

    def init(self) -> None:
        """Create the archive's schema (constraints, indexes) if missing; idempotent. The embedded archive
        does so when opened for writing, a server archive before its first write or on ``netarchive init``."""

    def levels(self, run: str) -> list[int]:
        """The archived levels of a run, ascending (raises NotFound for an unknown run)."""
        table = self.checkpoints(run)
        if table.empty:
            raise NotFound.run(run, self.location)
        return [int(level) for level in table["level"]]

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
