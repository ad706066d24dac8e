"""The one store interface: every backend (embedded LadybugDB, Neo4j server) implements it.

The CLI, the API and the analyses only ever see a :class:`Store`; no other module imports a backend.
Rules every backend keeps:

- ``write`` is all or nothing, and so are ``delete`` and ``write(replace=True)``: after an error, an
  interrupt, a crash or a full disk, the archive holds either the old checkpoint or the new one, whole.
  A checkpoint is written with its Checkpoint node marked ``incomplete`` and becomes visible only once
  all its rows are durable; every read, listing and analysis ignores marked checkpoints, and the next
  write (or ``check(repair=True)``) removes what an interrupted one left;
- reads verify what they read against the counts the Checkpoint node records (:func:`verify_counts`);
- ``check`` finds what is damaged or left over, and with ``repair`` removes or mends it;
- ``cypher`` is read-only and takes user values as parameters only;
- write-back of analysis results overwrites earlier values, never duplicates them.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from netarchive.errors import DamagedArchive, InputError, NotFound
from netarchive.model import ASSUMED_SEQUENTIAL, Checkpoint

Progress = Callable[[str], None]
"""Called with a short description of each step of a long write (``"synapses"``, ``"commit"``, ...)."""

CHECKPOINT_FIELDS = ("run", "level", "layers", "neurons", "edges", "sparsity", "architecture_source")
"""The columns every checkpoint listing starts with; the stored metrics follow."""
CURVE_PROPERTIES = ("curve_metric", "curve_iteration", "curve_value")
"""The three parallel lists on a Checkpoint node that hold its training curves (``Checkpoint.curves``),
one entry per logged point; never listed as metrics."""
CHECKPOINT_PROPERTIES = frozenset(
    {"id", "run", "level", "neurons", "edges", "sparsity", "layer_names", "widths", "input_shape", "layers", "written",
     "layer_synapses", "incomplete", "architecture_source", "architecture", "connections", *CURVE_PROPERTIES}
)
RUN_PROPERTIES = frozenset({"name", "run", "activation"})
NEURON_PROPERTIES = frozenset({"id", "run", "level", "group", "layer", "index", "channel", "y", "x", "bias",
                               "bn_weight", "bn_bias", "bn_mean", "bn_var"})
SYNAPSE_PROPERTIES = frozenset({"w", "layer", "ky", "kx", "kind", "from", "to", "_id", "_src", "_dst", "packed"})
"""The schema's own property names on each kind of node and relationship, on both backends (``from``,
``to``, ``packed`` and the ``_``-names are LadybugDB's internal columns): user-chosen names (metrics, meta
keys, write-back) may not shadow them."""
OLD_ARCHITECTURE_SOURCE = ASSUMED_SEQUENTIAL
"""The ``architecture_source`` of checkpoints archived before it was recorded: all were read as chains."""


CHECK_FIELDS = ("problem", "run", "level", "detail", "repair", "repaired")
"""The columns of ``check``: one row per problem found, what ``--repair`` does about it (empty when it
cannot), and whether it did."""
CURVE_COLUMNS = ("run", "level", "metric", "iteration", "value")

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

    def write_many(self, checkpoints: Sequence[Checkpoint], *, replace: bool = False, progress: Progress | None = None) -> None:
        """Archive several checkpoints (one ingest command's), each whole or not at all; a backend may
        write them in fewer, larger transactions (the embedded one: batches in one two-phase write)."""
        for checkpoint in checkpoints:
            self.write(checkpoint, replace=replace, progress=progress)

    @abstractmethod
    def read(self, run: str, level: int) -> Checkpoint:
        """Read one checkpoint back into the model (raises NotFound)."""

    @abstractmethod
    def checkpoints(self, run: str | None = None) -> pd.DataFrame:
        """One row per checkpoint, ordered by run and level: CHECKPOINT_FIELDS then the metrics by name."""

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
    def unfinished(self) -> pd.DataFrame:
        """``run, level`` of every checkpoint marked incomplete: left by a write or removal that was
        interrupted, hidden from every read, removed by the next write or ``check(repair=True)``."""

    @abstractmethod
    def check(self, repair: bool = False) -> pd.DataFrame:
        """Verify the whole archive (schema, every checkpoint against its recorded counts, rows that
        belong to no checkpoint, leftovers of interrupted writes): one row per problem, CHECK_FIELDS.
        With ``repair``, remove incomplete or damaged checkpoints (each named, to be ingested again) and
        whatever else the rows say, and report what was done."""

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
    def set_synapse_flag(self, run: str, level: int, name: str, layer: np.ndarray, src: np.ndarray, dst: np.ndarray,
                         ky: np.ndarray | None = None, kx: np.ndarray | None = None) -> None:
        """Mark synapses of a checkpoint with the boolean property ``name``: true for the listed ones, false
        for every other synapse of the checkpoint (e.g. ``in_msf`` for the maximum spanning forest).

        A synapse is ``(layer, src, dst, ky, kx)``: ``layer`` = forward index of its weight layer,
        ``src``/``dst`` = indices within the layer's source and target groups, ``ky``/``kx`` = its kernel
        offset (-1, or ky/kx None for all, on Linear layers)."""

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
            raise self.not_found(run)
        return [int(level) for level in table["level"]]

    def not_found(self, run: str, level: int | None = None) -> NotFound:
        """The error for an unknown run (or level of a run), saying which runs (or levels) exist."""
        return not_found_among(self.checkpoints(), run, level, self.location)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()



def recorded_counts(checkpoint: Checkpoint) -> dict[str, object]:
    """What a Checkpoint node records about its rows, so that reads and ``check`` can verify them:
    ``neurons``, ``layer_synapses`` (synapses per weight layer, in layer order) and ``connections`` (the
    weightless edges of add, concat and flatten). Reads verify them with :func:`verify_counts`."""
    return {
        "neurons": checkpoint.neurons,
        "layer_synapses": [layer.edges for layer in checkpoint.layers],
        "connections": len(checkpoint.connection_edges()[0]),
    }


def verify_counts(claimed: Mapping[str, object], found: Mapping[str, object], run: str, level: int) -> None:
    """Raise DamagedArchive when the rows read differ from the counts the Checkpoint node records.

    ``claimed`` maps count names (``neurons``, ``edges``, ``layer_synapses``, ...) to the recorded values
    (None for one an older archive did not record); ``found`` the same names to what was read. One line
    naming ``netarchive check``: never a silently wrong analysis.
    """
    wrong = [
        f"{_plain_count(found.get(name))} {name.replace('_', ' ')} where it records {_plain_count(value)}"
        for name, value in claimed.items()
        if value is not None and _plain_count(found.get(name)) != _plain_count(value)
    ]
    if wrong:
        raise damaged(run, level, f"the archive holds {'; '.join(wrong)}")


def layer_mismatches(widths, neurons, rows, recorded, what: str = "synapses") -> list[str]:
    """What ``check`` finds wrong with a checkpoint's rows: the neurons found per layer against its
    ``widths``, the ``rows`` of a relationship table per weight layer against the ``recorded`` counts
    (None: not recorded; a single total when an older archive recorded only that)."""
    wrong, widths, neurons, rows = [], list(widths), list(neurons), list(rows)
    if neurons != widths:
        wrong.append(f"{sum(neurons):,} of its {sum(widths):,} neurons (per layer {neurons}, not {widths})")
    if recorded is not None and list(recorded) != rows and not (len(recorded) == 1 and sum(rows) == recorded[0]):
        wrong.append(f"{sum(rows):,} of its {sum(recorded):,} {what} (per layer {rows}, not {list(recorded)})")
    return wrong


def damaged(run: str, level: int, what: str) -> DamagedArchive:
    """The one-line error for a checkpoint whose rows contradict its records."""
    return DamagedArchive.checkpoint(run, level, what)


def _plain_count(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return [int(v) for v in value]
    return int(value)


@dataclass
class Problem:
    """One thing ``check`` found wrong: what, where, what ``--repair`` does about it (empty when it cannot),
    and ``fix``, the function that does it."""

    problem: str
    detail: str
    repair: str = ""
    fix: Callable[[], None] | None = None
    run: str | None = None
    level: int | None = None


def unfinished_problem(run: str, level: int, remove: Callable[[], None]) -> Problem:
    return Problem("unfinished-checkpoint", "left by an interrupted write or removal; hidden from every read",
                   "remove it (ingest it again if the archive should hold it)", remove, run, level)


def damaged_problem(run: str, level: int, wrong: list[str], remove: Callable[[], None]) -> Problem:
    return Problem("damaged-checkpoint", "holds " + "; ".join(wrong), "remove it (ingest it again)", remove, run, level)


def problem_table(problems: Iterable[Problem], repair: bool) -> pd.DataFrame:
    """The CHECK_FIELDS table of ``problems``, each fixed first when ``repair`` (in order: a later fix may
    rely on an earlier one having run)."""
    rows = []
    for found in problems:
        repaired = bool(repair and found.fix is not None)
        if repaired:
            found.fix()
        rows.append({
            "problem": found.problem, "run": found.run, "level": found.level, "detail": found.detail,
            "repair": found.repair, "repaired": repaired,
        })
    table = pd.DataFrame(rows, columns=list(CHECK_FIELDS))
    return table.astype({"level": "Int64", "repaired": bool})


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


def flagged_synapses(widths, sources, targets, layer, src, dst, ky=None, kx=None) -> tuple[np.ndarray, ...]:
    """The synapses ``(layer, src, dst, ky, kx)`` to mark (:meth:`Store.set_synapse_flag`) as global
    ``(source, target, ky, kx)`` arrays for a checkpoint of these group ``widths`` whose weight layers join
    the groups ``sources`` -> ``targets``; InputError for arrays of different lengths or a synapse outside."""
    layer, src, dst = (np.asarray(values, dtype=np.int64) for values in (layer, src, dst))
    ky, kx = (np.full(layer.shape, -1, dtype=np.int64) if offset is None else np.asarray(offset, dtype=np.int64)
              for offset in (ky, kx))
    if not layer.shape == src.shape == dst.shape == ky.shape == kx.shape:
        raise InputError("layer, src, dst, ky and kx must be arrays of one length")
    widths, sources, targets = (np.asarray(values, dtype=np.int64) for values in (widths, sources, targets))
    if len(layer) and (layer.min() < 0 or layer.max() >= len(sources)):
        raise InputError("a synapse to mark refers to a layer or neuron outside the checkpoint")
    source, target = sources[layer], targets[layer]
    if len(layer) and ((src < 0).any() or (src >= widths[source]).any() or (dst < 0).any() or (dst >= widths[target]).any()):
        raise InputError("a synapse to mark refers to a layer or neuron outside the checkpoint")
    offsets = np.concatenate([[0], np.cumsum(widths)])
    return offsets[source] + src, offsets[target] + dst, ky, kx


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


def not_found_among(listing: pd.DataFrame, run: str, level: int | None, location: str) -> NotFound:
    """The error for a (run, level), or a run, that ``listing`` (run, level rows) lacks: the runs or the
    levels that exist instead."""
    levels = listing.loc[listing["run"] == run, "level"].tolist()
    if level is None or not levels:
        return NotFound.run(run, location, listing["run"].unique().tolist())
    return NotFound.checkpoint(run, level, location, levels)


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
