"""OpenLTH experiment trees (facebookresearch/open_lth), read as OpenLTH writes them::

    ROOT/lottery_<hash>/                       one experiment (an md5 of its hyperparameters)
      replicate_<N>/                           one run
        level_pretrain/main/                   the dense pre-training (rewinding) phase: no mask
        level_<L>/main/                        pruning level L
          hparams.log                          (level 0) the hyperparameters, section by section
          mask.pth                             parameter name -> 0/1 int tensor
          sparsity_report.json                 {"total": weights, "unpruned": kept} over the mask
          model_ep<E>_it<I>.pth                state_dicts at the start (the rewinding point) and end of training
          checkpoint.pth                       optimizer state, to resume training (ignored)
          logger                               lines name,iteration,value (test_loss, test_accuracy, ...)
        level_<L>/lottery_branch_<name>_<hash>/  a branch on level L: the same files (`retrain` writes no mask)

Any directory of the tree can be ingested: ROOT, ``lottery_<hash>`` (``replicate_<N>`` becomes run
``<prefix>-r<N>``, the prefix being ``--run`` or ``lottery_<first 8 of the hash>``), ``replicate_<N>`` or any
directory of ``level_<L>/main`` folders (the run ``--run``, else named from the hash as above), ``level_<L>``,
``level_<L>/main`` or a branch directory (one level). A branch is a run of its own, ``<run>-<name>_<first 8
of its hash>``, made of the levels the branch was run on. ``level_pretrain`` is not a pruning level: its
final weights are the ones level 0 starts from, and its logger's curves are kept with level 0 as
``pretrain_<metric>``.

The labels of a run are the fields of ``hparams.log`` under their OpenLTH names (``model_name``,
``dataset_name``, ``batch_size``, ``optimizer_name``, ``lr``, ``training_steps``, ``pruning_strategy``,
``pruning_fraction``, seeds when set, ...), ``rewinding_steps`` (the pre-training phase's length, ``0it``
without one; pre-training fields that differ from the main ones as ``pretrain_<field>``), ``replicate``,
``openlth_hash``, and for a branch ``branch`` and ``branch_hash``.

The saved weights are not zero where masked: the mask is applied here. The iteration of
``model_ep<E>_it<I>.pth`` is E x (iterations per epoch) + I; OpenLTH evaluates at the end of training, so
the iterations per epoch follow from the end model and the logger's last iteration. A checkpoint's
metrics (``accuracy``, ``loss``) are the ones logged at its model's iteration, or none.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from netarchive.errors import InputError
from netarchive.loaders import torch_file

METRIC_NAMES = {"test_accuracy": "accuracy", "test_loss": "loss"}
_LOTTERY = re.compile(r"lottery_([0-9a-f]+)")
_BRANCH = re.compile(r"lottery_branch_(\w+)_([0-9a-f]+)")
_REPLICATE = re.compile(r"replicate_(\d+)")
_LEVEL = re.compile(r"level_(\d+)")
_PRETRAIN = "level_pretrain"
_MODEL = re.compile(r"model_ep(\d+)_it(\d+)\.pth")
_FIELD = re.compile(r"    \* (\w+) => (.*)")
_SHORT = 8
"""Characters of a hash kept in the run names derived from it."""


@dataclass
class Source:
    """One checkpoint to load: the run and level it becomes, its weights file, and what the tree says
    about it (mask, metrics, labels, curves), already read and checked."""

    run: str
    level: int
    weights: Path
    mask: dict | None
    metrics: dict[str, float]
    meta: dict[str, str]
    curves: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)


def is_openlth(path: Path) -> bool:
    """Whether ``path`` is a directory of an OpenLTH tree (at any depth, see the module docstring)."""
    return path.is_dir() and (
        _is_training(path) or _is_level(path) or _is_replicate(path) or _is_lottery(path) or _is_root(path)
        or path.name == _PRETRAIN or path.parent.name == _PRETRAIN
    )


def find(path: Path, run: str | None, level: int | None, which: str) -> list[Source]:
    """Every checkpoint under the OpenLTH directory ``path`` (``which``: the ``start`` or ``end`` weights
    of each level's training), named as the module docstring says."""
    if path.name == _PRETRAIN or path.parent.name == _PRETRAIN:
        raise InputError(
            f"{path} is OpenLTH's dense pre-training phase, not a pruning level: its final weights are those "
            "level 0 starts from (ingest level_0 with --which start), and its curves come with level 0"
        )
    if _is_training(path) or _is_level(path):
        return _one_level(path, run, level, which)
    if level is not None:
        raise InputError("--level applies to a single checkpoint file or level directory; an OpenLTH tree names its levels")
    if _is_replicate(path):
        return _replicate(path, _replicate_name(path, run), which)
    if _is_lottery(path):
        return _lottery(path, run, which)
    lotteries = sorted(child for child in path.iterdir() if _is_lottery(child))
    if run is not None and len(lotteries) > 1:
        raise InputError(
            f"{path} holds {len(lotteries)} OpenLTH experiments: --run would name their replicates alike "
            "(leave it out to name runs from the hashes, or ingest each lottery_<hash> with its own --run)"
        )
    return [found for lottery in lotteries for found in _lottery(lottery, run, which)]


# -- what a directory is -------------------------------------------------------------------------------
def _models(directory: Path) -> list[tuple[tuple[int, int], Path]]:
    """``((epoch, iteration), file)`` of every ``model_ep<E>_it<I>.pth`` in ``directory``, in training order."""
    return sorted(((int(m[1]), int(m[2])), child) for child in directory.iterdir() if (m := _MODEL.fullmatch(child.name)))


def _is_training(path: Path) -> bool:
    """A ``main`` or branch directory: the files of one training."""
    return path.is_dir() and bool(_models(path))


def _is_level(path: Path) -> bool:
    return bool(_LEVEL.fullmatch(path.name)) and _is_training(path / "main")


def _is_replicate(path: Path) -> bool:
    return path.is_dir() and any(_is_level(child) for child in path.iterdir())


def _is_lottery(path: Path) -> bool:
    return path.is_dir() and any(_REPLICATE.fullmatch(child.name) and _is_replicate(child) for child in path.iterdir())


def _is_root(path: Path) -> bool:
    return any(_is_lottery(child) for child in path.iterdir())


# -- naming ------------------------------------------------------------------------------------------
def _lottery(path: Path, run: str | None, which: str) -> list[Source]:
    found = _LOTTERY.fullmatch(path.name)
    prefix = run or (f"lottery_{found[1][:_SHORT]}" if found else path.name)
    replicates = sorted(
        (int(m[1]), child) for child in path.iterdir() if (m := _REPLICATE.fullmatch(child.name)) and _is_replicate(child)
    )
    return [level for number, child in replicates for level in _replicate(child, f"{prefix}-r{number}", which)]


def _replicate_name(replicate: Path, run: str | None) -> str:
    """``run``, else ``lottery_<hash>-r<N>`` from where the replicate lives in the tree."""
    if run:
        return run
    number, lottery = _REPLICATE.fullmatch(replicate.name), _LOTTERY.fullmatch(replicate.parent.name)
    if number and lottery:
        return f"lottery_{lottery[1][:_SHORT]}-r{number[1]}"
    raise InputError(f"give the run a name with --run (it cannot be named from {replicate})")


def _labels(replicate: Path) -> dict[str, str]:
    """The run's labels: hparams.log of level 0, the replicate's number and the experiment's hash."""
    labels = parse_hparams(replicate / "level_0" / "main" / "hparams.log")
    if number := _REPLICATE.fullmatch(replicate.name):
        labels["replicate"] = number[1]
    if lottery := _LOTTERY.fullmatch(replicate.parent.name):
        labels["openlth_hash"] = lottery[1]
    return labels


def _branch(directory: Path, run: str, labels: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The run name and labels of a training directory: the main run's, or its branch's."""
    branch = _BRANCH.fullmatch(directory.name)
    if branch is None:
        return run, labels
    name, digest = branch[1], branch[2]
    return f"{run}-{name}_{digest[:_SHORT]}", {**labels, "branch": name, "branch_hash": digest}


# -- walking -----------------------------------------------------------------------------------------
def _replicate(replicate: Path, run: str, which: str) -> list[Source]:
    labels = _labels(replicate)
    levels = []
    for child in sorted(replicate.iterdir()):
        if _is_level(child):
            number = int(_LEVEL.fullmatch(child.name)[1])
            levels += [_read(t, run, number, labels, which) for t in _trainings(child)]
    return levels


def _trainings(level: Path) -> list[Path]:
    """``main`` and every branch directory of a ``level_<L>`` directory."""
    branches = sorted(child for child in level.iterdir() if _BRANCH.fullmatch(child.name) and _is_training(child))
    return [level / "main", *branches]


def _one_level(path: Path, run: str | None, level: int | None, which: str) -> list[Source]:
    """A ``level_<L>`` directory (main and its branches) or one training directory in it."""
    level_dir = path if _is_level(path) else path.parent
    named = _LEVEL.fullmatch(level_dir.name)
    if named is None and level is None:
        raise InputError(f"cannot tell the level of {path}: it is not in a level_<L> folder (give --level)")
    if named is not None and level is not None and int(named[1]) != level:
        raise InputError(f"--level {level} contradicts the folder {level_dir.name} of {path}")
    number = int(named[1]) if named else level
    replicate = level_dir.parent
    name = _replicate_name(replicate, run)
    labels = _labels(replicate) if named else {}
    trainings = _trainings(level_dir) if path == level_dir else [path]
    return [_read(training, name, number, labels, which) for training in trainings]


# -- reading one training ----------------------------------------------------------------------------
def _read(directory: Path, run: str, level: int, labels: dict[str, str], which: str) -> Source:
    run, labels = _branch(directory, run, labels)
    models = _models(directory)
    if which == "end" and len(models) == 1:
        raise InputError(
            f"{directory} has only {models[0][1].name}: the level has not finished training "
            "(ingest it with --which start, or once it has finished)"
        )
    mask_dir = directory if (directory / "mask.pth").exists() else directory.parent / "main"  # a retrain branch
    mask = read_mask(mask_dir)
    curves = read_logger(directory / "logger") if (directory / "logger").exists() else {}
    pretraining = directory.parent.parent / _PRETRAIN / "main" / "logger"
    if directory.name == "main" and directory.parent.name == "level_0" and pretraining.exists():
        curves.update({f"pretrain_{name}": points for name, points in read_logger(pretraining).items()})
    (epoch, step), weights = models[-1] if which == "end" else models[0]
    iteration = model_iteration(epoch, step, models[-1][0], curves)
    metrics = {
        short: curves[name][1][curves[name][0].index(iteration)]
        for name, short in METRIC_NAMES.items()
        if name in curves and iteration in curves[name][0]
    }
    return Source(run, level, weights, mask, metrics, dict(labels), curves)


def model_iteration(epoch: int, step: int, end: tuple[int, int], curves: dict) -> int | None:
    """The training iteration of ``model_ep<epoch>_it<step>``: ``epoch`` x (iterations per epoch) + ``step``,
    where the iterations per epoch come from the end model ``end`` and the logger's last iteration (OpenLTH
    always evaluates at the end of training); None when they cannot be told.

    >>> model_iteration(2, 62, (40, 0), {"test_accuracy": ([1000, 18760], [0.1, 0.98])})
    1000
    """
    if epoch == 0:
        return step
    last = max((points[0][-1] for points in curves.values() if points[0]), default=None)
    end_epoch, end_step = end
    if last is None or end_epoch == 0 or (last - end_step) % end_epoch:
        return None
    per_epoch = (last - end_step) // end_epoch
    return epoch * per_epoch + step if per_epoch > max(step, end_step) else None


def read_mask(directory: Path) -> dict | None:
    """``mask.pth`` of ``directory`` (None without one), checked against its ``sparsity_report.json``."""
    path = directory / "mask.pth"
    if not path.exists():
        return None
    mask = torch_file.read(path)
    report = directory / "sparsity_report.json"
    if report.exists():
        total, unpruned = _sparsity_report(report)
        weights, kept = sum(m.size for m in mask.values()), int(sum(np.count_nonzero(m) for m in mask.values()))
        if (total, unpruned) != (weights, kept):
            raise InputError(
                f"{report} says {unpruned:g} of {total:g} weights are unpruned, but {path.name} beside it keeps "
                f"{kept} of {weights}"
            )
    return mask


def _sparsity_report(path: Path) -> tuple[float, float]:
    try:
        report = json.loads(path.read_text())
        return float(report["total"]), float(report["unpruned"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InputError(f'{path}: expected {{"total": <weights>, "unpruned": <kept>}} as OpenLTH writes it') from None


def read_logger(path: Path) -> dict[str, tuple[list[int], list[float]]]:
    """Every metric of an OpenLTH ``logger`` as ``name -> (iterations ascending, values)``, in the order the
    metrics first appear; a (name, iteration) logged twice with two values is refused."""
    logged: dict[str, dict[int, float]] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):  # binary: the line error below
        if not line.strip():
            continue
        try:
            name, iteration, value = line.rsplit(",", 2)
            iteration, value = int(iteration), float(value)
        except ValueError:
            raise InputError(f"{path}:{number}: expected name,iteration,value, got {line[:80]!r}") from None
        points = logged.setdefault(name, {})
        if points.get(iteration, value) != value:
            raise InputError(f"{path}:{number}: {name} at iteration {iteration} is logged twice, as {points[iteration]} and {value}")
        points[iteration] = value
    return {name: ([i for i in sorted(points)], [points[i] for i in sorted(points)]) for name, points in logged.items()}


def parse_hparams(path: Path) -> dict[str, str]:
    """The labels of an OpenLTH ``hparams.log`` ({} when there is none), see the module docstring.

    The file is OpenLTH's ``Desc.display``: per section a title line, then ``    * name => value`` lines.
    """
    if not path.exists():
        return {}
    main: dict[str, str] = {}
    pretrain: dict[str, str] = {}
    section = None
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        found = _FIELD.fullmatch(line.rstrip("\r"))
        if found and section is not None:
            into = pretrain if section.startswith("Pretraining ") else main
            key, value = found[1], found[2]
            if into.get(key, value) != value:
                raise InputError(f"{path}:{number}: {key} is given twice, as {into[key]!r} and {value!r}")
            into[key] = value
        elif line.strip() and not line[0].isspace() and "=>" not in line:
            section = line.strip()
        elif line.strip():
            raise InputError(f"{path}:{number}: expected a section title or '    * name => value', got {line[:80]!r}")
    labels = dict(main)
    labels["rewinding_steps"] = pretrain.pop("training_steps", "0it")
    labels.update({f"pretrain_{key}": value for key, value in pretrain.items() if main.get(key) != value})
    return labels
