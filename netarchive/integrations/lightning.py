"""A PyTorch Lightning callback that archives the model at the end of each pruning level.

An IMP loop in Lightning fits once per level (rewind, prune, ``trainer.fit`` again); :class:`ArchiveCallback`
archives the module when each fit ends, as levels ``first_level``, ``first_level + 1``, … of ``run``, with
its masks (``torch.nn.utils.prune``, as Lightning's ``ModelPruning`` applies them) and the scalar
``trainer.callback_metrics`` as metrics. ``every="epoch"`` archives at each training epoch's end instead
(a ``ModelPruning`` schedule that prunes every epoch), and ``every=None`` only when the script calls
:meth:`ArchiveCallback.archive_level`. Needs the optional dependency: ``pip install 'netarchive[lightning]'``.

Example::

    from netarchive.integrations.lightning import ArchiveCallback

    callback = ArchiveCallback("out/archive", run="lenet-seed0", input_shape=(1, 28, 28))
    for level in range(20):
        trainer = lightning.Trainer(max_epochs=4, callbacks=[callback])
        trainer.fit(module, data)          # archived as level `level` when the fit ends
        prune_and_rewind(module)
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence

try:
    from lightning.pytorch import Callback
except ImportError:  # the older package name
    try:
        from pytorch_lightning import Callback
    except ImportError:
        raise ImportError(
            "netarchive.integrations.lightning needs PyTorch Lightning: pip install 'netarchive[lightning]'"
        ) from None

from netarchive.api import Archive
from netarchive.errors import InputError
from netarchive.integrations import Recorder

EVERY = ("fit", "epoch", None)
_NOT_NAME = re.compile(r"\W")


class ArchiveCallback(Callback):
    """Archives the LightningModule (or ``module(pl_module)``, the network inside it) as levels of ``run``.

    ``archive``, ``input_shape``, ``meta`` and ``replace`` are those of :class:`~netarchive.integrations.Recorder`.
    Metric names are ``trainer.callback_metrics``' with every character that is not a letter, digit or
    ``_`` made ``_`` (``val/acc`` -> ``val_acc``); ``metrics`` keeps only the names it lists. Only the
    process of global rank 0 writes.
    """

    def __init__(self, archive: Archive | str | os.PathLike, run: str, *, input_shape: Sequence[int] | None = None,
                 meta: Mapping[str, str] | None = None, replace: bool = False, every: str | None = "fit",
                 first_level: int = 0, metrics: Sequence[str] | None = None, module: Callable | None = None):
        if every not in EVERY:
            raise InputError(f"every={every!r}: choose 'fit' (each trainer.fit is a level), 'epoch' or None (archive_level only)")
        self.recorder = Recorder(archive, run, input_shape=input_shape, meta=meta, replace=replace)
        self.every, self.next_level, self.wanted, self.module = every, first_level, metrics, module

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.every == "fit":
            self.archive_level(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.every == "epoch":
            self.archive_level(trainer, pl_module)

    def archive_level(self, trainer, pl_module, level: int | None = None) -> None:
        """Archive the module now as ``level`` (default: the next one), with the trainer's metrics."""
        level = self.next_level if level is None else level
        if trainer.is_global_zero:
            network = pl_module if self.module is None else self.module(pl_module)
            self.recorder.level(network, level, metrics=self.metrics(trainer))
        self.next_level = level + 1

    def metrics(self, trainer) -> dict[str, float]:
        """The scalar ``callback_metrics`` as numbers, by archivable name."""
        found = {}
        for name, value in trainer.callback_metrics.items():
            if getattr(value, "numel", lambda: 1)() != 1:
                continue
            key = _NOT_NAME.sub("_", name)
            if self.wanted is None or name in self.wanted or key in self.wanted:
                found[key] = float(value)
        return found

    def close(self) -> None:
        """Close the archive if the callback opened it (from a location)."""
        self.recorder.close()


__all__ = ["ArchiveCallback"]
