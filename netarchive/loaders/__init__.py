"""Read checkpoints from disk into the model; nothing else in netarchive knows a file format.

:func:`load` is the one entry point: it detects the format of every path (a PyTorch state_dict,
safetensors, npz, an OpenLTH run directory, a ``netarchive export`` directory, or a plain directory of
such files) and returns the
checkpoints, fully checked, before anything is written to an archive. With a ``model`` (an ``nn.Module``
or a ``--model`` SPEC, :mod:`netarchive.loaders.factory`) the architecture is traced from it once
(:mod:`netarchive.loaders.traced`) and each file's weights fill it by name; without one, the Linear weights
of a state_dict are read as a chain in state_dict order, recorded as ``assumed sequential``.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from netarchive.errors import InputError
from netarchive.loaders import exported, npz_file, openlth, safetensors_file, torch_file
from netarchive.loaders.stack import effective_weights, layer_stack
from netarchive.model import ASSUMED_SEQUENTIAL, Checkpoint, sample_shape

READERS = {suffix: module.read for module in (torch_file, safetensors_file, npz_file) for suffix in module.SUFFIXES}
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def read_tensors(path: str | os.PathLike) -> dict:
    """The named arrays of one checkpoint file, whatever its format."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(f"{path}: unknown checkpoint format (expected one of {', '.join(sorted(READERS))})")
    return reader(path)


def load(
    paths: Sequence[str | os.PathLike],
    *,
    run: str,
    level: int | None = None,
    mask: str | os.PathLike | None = None,
    layers: Sequence[str] | None = None,
    input_shape: Sequence[int] | None = None,
    metrics: Mapping[str, float] | None = None,
    meta: Mapping[str, str] | None = None,
    which: str = "end",
    activation: str = "relu",
    model=None,
    progress: Callable[[str], None] | None = None,
) -> list[Checkpoint]:
    """Load every checkpoint found under ``paths`` as levels of run ``run``, sorted by level.

    A file's level is ``level`` when one file is given, else the last number in its name
    (``level_3.pt`` -> 3); an OpenLTH directory gives one checkpoint per ``level_<L>`` folder with its
    logged test accuracy and loss as metrics. ``mask`` is a separate mask file applied to every file.
    ``model`` (an ``nn.Module`` or a SPEC ``package.module:factory`` / ``file.py:factory``) gives the
    architecture, traced on samples of ``input_shape`` (C,H,W or C,L; needed for convolutions). Without
    it the Linear weights (``layers``, default all, in state_dict order) form a chain with ``activation``
    between hidden layers; ``input_shape`` then gives the inputs pixel coordinates.
    """
    step = progress or (lambda _: None)
    if not run:
        raise InputError("give the run a name with --run")
    if level is not None and level < 0:
        raise InputError(f"--level {level}: a level counts pruning rounds, so it is 0 or more")
    exports = [Path(p) for p in paths if exported.is_export(Path(p))]
    if exports:
        if len(paths) > 1 or model is not None:
            raise InputError(f"{exports[0]} is a netarchive export: ingest it alone and without --model (it holds the architecture)")
        return exported.read(exports[0], run=run, level=level)
    sources = _sources([Path(p) for p in paths], level, which)
    external_mask = read_tensors(mask) if mask else None
    build = _chain(layers, input_shape, activation) if model is None else _traced(model, layers, input_shape, step)
    checkpoints = []
    for source_level, weights_path, mask_tensors, logged in sources:
        step(f"reading {weights_path.name}")
        weights = effective_weights(read_tensors(weights_path), _merge(mask_tensors, external_mask))
        checkpoints.append(build(weights, run=run, level=source_level, origin=str(weights_path),
                                 metrics={**logged, **(metrics or {})}, meta=dict(meta or {})))
    levels = [c.level for c in checkpoints]
    duplicated = sorted({l for l in levels if levels.count(l) > 1})
    if duplicated:
        raise InputError(f"several files give level {duplicated[0]} of run {run!r}: give one file per level")
    return sorted(checkpoints, key=lambda c: c.level)


def _chain(layers: Sequence[str] | None, input_shape, activation: str):
    """How a state_dict without a model becomes a checkpoint: its Linear weights as a chain."""
    shape = sample_shape(input_shape)

    def build(weights, *, run, level, origin, metrics, meta) -> Checkpoint:
        return Checkpoint(run, level, layer_stack(weights, layers, origin), shape, metrics, meta, activation,
                          architecture_source=ASSUMED_SEQUENTIAL)

    return build


def _traced(model, layers: Sequence[str] | None, input_shape, step):
    """How a state_dict becomes a checkpoint of ``model``: the structure traced once, filled by name."""
    from netarchive.loaders import traced
    from netarchive.loaders.factory import load_factory

    if layers:
        raise InputError("--layers does not apply with --model: the model says which tensors are its layers")
    step("tracing the model")
    if isinstance(model, str):
        return traced.trace(load_factory(model), input_shape, model).checkpoint
    return traced.trace(model, input_shape).checkpoint


def _merge(first, second):
    if first is None or second is None:
        return first or second
    return {**first, **second}


def _sources(paths: list[Path], level: int | None, which: str):
    """``(level, weights file, mask tensors or None, logged metrics)`` for every checkpoint under ``paths``."""
    files: list[Path] = []
    sources = []
    for path in paths:
        if not path.exists():
            raise InputError(f"no such file or directory: {path}")
        if openlth.is_run_directory(path):
            for each_level, main in openlth.levels(path):
                sources.append((each_level, openlth.model_file(main, which), openlth.mask(main), openlth.metrics(main)))
        elif path.is_dir():
            found = sorted(child for child in path.iterdir() if child.suffix.lower() in READERS)
            if not found:
                raise InputError(f"{path} holds no checkpoint files ({', '.join(sorted(READERS))}) and no level_<L>/main folders")
            files.extend(found)
        else:
            files.append(path)
    if level is not None and len(files) + len(sources) != 1:
        raise InputError("--level applies to a single checkpoint file; name the files by level (level_3.pt) instead")
    for path in files:
        sources.append((level if level is not None else _level_from_name(path), path, None, {}))
    return sources


def _level_from_name(path: Path) -> int:
    match = _LAST_NUMBER.search(path.stem)
    if match is None:
        raise InputError(f"cannot tell the level of {path.name}: give --level or put the level in the name (level_3.pt)")
    return int(match.group(1))


__all__ = ["load", "read_tensors"]
