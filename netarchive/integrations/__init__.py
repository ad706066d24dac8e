"""Archive a network from its training loop, level by level, with no checkpoint files in between.

:class:`Recorder` is the plain-PyTorch hook: one call per pruning level archives the live module (its
architecture traced, its weights with their masks, ``torch.nn.utils.prune`` included) with the level's
metrics, through :meth:`netarchive.Archive.ingest_model`. Each level is one two-phase write, so another
process may read the archive while training goes on. The PyTorch Lightning callback, built on it, is
:mod:`netarchive.integrations.lightning` (optional dependency: ``pip install 'netarchive[lightning]'``).

Example::

    from netarchive.integrations import Recorder

    with Recorder("out/archive", run="digits", input_shape=(1, 8, 8), meta={"dataset": "digits"}) as record:
        for level in range(16):
            train(model)                                  # the loop's own training and pruning
            record.level(model, level, metrics={"accuracy": 0.97, "loss": 0.11})
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pandas as pd

from netarchive.api import Archive
from netarchive.errors import InputError


class Recorder:
    """Archives levels of run ``run`` into ``archive`` (an open :class:`~netarchive.Archive`, or a location
    that :func:`netarchive.open` opens for writing and :meth:`close` closes). The module is traced at its
    first level and again only when its structure changes (:class:`netarchive.loaders.traced.TraceCache`).

    ``input_shape`` (C,H,W or C,L of one sample) is needed to trace convolutions and gives an MLP's inputs
    pixel coordinates; ``meta`` labels the run; ``replace`` overwrites levels already archived.
    """

    def __init__(self, archive: Archive | str | os.PathLike, run: str, *, input_shape: Sequence[int] | None = None,
                 meta: Mapping[str, str] | None = None, replace: bool = False):
        if not run:
            raise InputError("give the run a name")
        if isinstance(archive, Archive):
            self.archive, self._owns = archive, False
        else:
            import netarchive

            self.archive, self._owns = netarchive.open(archive), True
        self.run, self.input_shape, self.meta, self.replace = run, input_shape, dict(meta or {}), replace
        self._traces = None

    def level(self, model, level: int, *, metrics: Mapping[str, float] | None = None,
              curves: Mapping[str, tuple[Sequence[int], Sequence[float]]] | None = None) -> pd.DataFrame:
        """Archive ``model`` (an ``nn.Module``, left as it was) as level ``level`` with its ``metrics`` (numbers;
        0-d tensors too) and training ``curves`` (``metric -> (iterations, values)``); returns the summary row."""
        from netarchive.loaders.traced import TraceCache  # imports torch, which the caller has

        numbers = {name: float(value) for name, value in (metrics or {}).items()}
        self._traces = self._traces or TraceCache()
        return self.archive.ingest_model(model, run=self.run, level=level, input_shape=self.input_shape, metrics=numbers,
                                         meta=self.meta, curves=curves, replace=self.replace, traces=self._traces)

    def close(self) -> None:
        if self._owns:
            self.archive.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["Recorder"]
