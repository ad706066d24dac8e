"""An IMP run laid out as OpenLTH lays it out, one checkpoint per level::

    RUN/level_<L>/main/mask.pth                parameter name -> 0/1 tensor shaped like the weight
    RUN/level_<L>/main/model_ep<E>_it<I>.pth   state_dicts at the start and end of the level's training
    RUN/level_<L>/main/sparsity_report.json
    RUN/level_<L>/main/logger                  lines "name,iteration,value" (test_accuracy, test_loss)

The saved weights are not zero where masked: the mask is applied here.
"""
from __future__ import annotations

import re
from pathlib import Path

from netarchive.errors import InputError
from netarchive.loaders import torch_file

_LEVEL = re.compile(r"level_(\d+)")
_MODEL = re.compile(r"model_ep(\d+)_it(\d+)\.pth")
METRIC_NAMES = {"test_accuracy": "accuracy", "test_loss": "loss"}


def is_run_directory(path: Path) -> bool:
    return path.is_dir() and any(_LEVEL.fullmatch(child.name) and (child / "main").is_dir() for child in path.iterdir())


def levels(path: Path) -> list[tuple[int, Path]]:
    """``(level, level_dir/main)`` for every level of the run, ascending."""
    found = [(int(m.group(1)), child / "main") for child in path.iterdir() if (m := _LEVEL.fullmatch(child.name))]
    return sorted((level, main) for level, main in found if main.is_dir())


def model_file(main: Path, which: str) -> Path:
    """The state_dict at the ``end`` (latest epoch and iteration) or ``start`` of the level's training."""
    models = sorted(
        ((int(m.group(1)), int(m.group(2))), child) for child in main.iterdir() if (m := _MODEL.fullmatch(child.name))
    )
    if not models:
        raise InputError(f"{main} has no model_ep<E>_it<I>.pth file")
    return models[-1][1] if which == "end" else models[0][1]


def mask(main: Path) -> dict | None:
    path = main / "mask.pth"
    return torch_file.read(path) if path.exists() else None


def metrics(main: Path) -> dict[str, float]:
    """The last logged value of the test accuracy and loss, as ``accuracy`` and ``loss``."""
    path = main / "logger"
    if not path.exists():
        return {}
    last: dict[str, tuple[int, float]] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):  # binary: the line error below
        if not line.strip():
            continue
        try:
            name, iteration, value = line.split(",")
            entry = (int(iteration), float(value))
        except ValueError:
            raise InputError(f"{path}:{number}: expected name,iteration,value, got {line[:80]!r}") from None
        if name in METRIC_NAMES and entry[0] >= last.get(name, (-1, 0.0))[0]:
            last[name] = entry
    return {METRIC_NAMES[name]: value for name, (_, value) in last.items()}
