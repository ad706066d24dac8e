"""An OpenLTH experiment tree written file by file as open_lth writes it, for the loader's tests.

What open_lth does, and this module copies (facebookresearch/open_lth):

- ``LotteryDesc.run_path``: ``<root>/lottery_<md5>/replicate_<N>/level_<L>/main``; a branch's files go to
  ``level_<L>/lottery_branch_<name>_<md5>`` (``Branch.branch_root``); rewinding trains ``level_pretrain/main``.
- ``Desc.save``: ``hparams.log`` in ``level_0/main``, the ``display`` of each hyperparameter group in
  the order of the field names (dataset, model, pretrain dataset, pretrain training, pruning, training),
  joined by newlines: a title line, then ``    * name => value`` for the fields without a falsy default.
- ``Mask.save``: ``mask.pth`` (int tensors keyed by the prunable weights, the output layer included) and
  ``sparsity_report.json`` (``json.dumps({'total': float, 'unpruned': float}, indent=4)``).
- ``standard_train``: ``model_ep<E>_it<I>.pth`` at the start and end step, ``checkpoint.pth`` (``ep``, ``it``,
  model and optimizer state, the logger as text), and ``logger``: ``MetricLogger.__str__``, the lines
  ``name,iteration,value`` of a dict in insertion order, no final newline; per evaluation ``test_loss``,
  ``test_accuracy``, ``test_examples``, at every epoch start and at the start and end steps.
- Steps: iteration = epoch x iterations per epoch + it; MNIST at batch 128 has ceil(60000 / 128) = 469
  iterations per epoch, so ``--rewinding_steps 500it`` starts each level at ``model_ep1_it31.pth`` and
  ``training_steps 4ep`` ends it at ``model_ep4_it0.pth`` (iteration 1876).

The network is a toy stand-in for ``mnist_lenet``: ``fc_layers.0`` (4 -> 3) and ``fc`` (3 -> 2), with
``pruning_layers_to_ignore = fc.weight`` as open_lth's default for LeNet.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

PER_EPOCH = 469
REWIND = (1, 31)  # 500it
END = (4, 0)  # 4ep
LOTTERY_HASH = hashlib.md5(b"lottery of the tests").hexdigest()
BRANCH_HASH = hashlib.md5(b"randomly_prune branch of the tests").hexdigest()
REPLICATES = (1, 2)
LEVELS = (0, 1, 2)
BRANCH_LEVELS = (1, 2)
BRANCH = f"lottery_branch_randomly_prune_{BRANCH_HASH}"

HPARAMS_LOG = "\n".join([
    "Dataset Hyperparameters",
    "    * dataset_name => mnist",
    "    * batch_size => 128",
    "    * subset_stride => 1",
    "Model Hyperparameters",
    "    * model_name => mnist_lenet_3",
    "    * model_init => kaiming_normal",
    "    * batchnorm_init => uniform",
    "Pretraining Dataset Hyperparameters",
    "    * dataset_name => mnist",
    "    * batch_size => 128",
    "    * subset_stride => 1",
    "Pretraining Training Hyperparameters",
    "    * optimizer_name => sgd",
    "    * lr => 0.1",
    "    * training_steps => 500it",
    "    * data_order_seed => 7",
    "Hyperparameters for Sparse Global Pruning",
    "    * pruning_strategy => sparse_global",
    "    * pruning_fraction => 0.2",
    "    * pruning_layers_to_ignore => fc.weight",
    "Training Hyperparameters",
    "    * optimizer_name => sgd",
    "    * lr => 0.1",
    "    * training_steps => 4ep",
    "    * data_order_seed => 7",
])
LABELS = {  # what netarchive makes of it (the pretraining groups repeat the main ones but for the steps)
    "dataset_name": "mnist", "batch_size": "128", "subset_stride": "1",
    "model_name": "mnist_lenet_3", "model_init": "kaiming_normal", "batchnorm_init": "uniform",
    "optimizer_name": "sgd", "lr": "0.1", "training_steps": "4ep", "data_order_seed": "7",
    "pruning_strategy": "sparse_global", "pruning_fraction": "0.2", "pruning_layers_to_ignore": "fc.weight",
    "rewinding_steps": "500it", "openlth_hash": LOTTERY_HASH,
}


def iteration(step: tuple[int, int]) -> int:
    return step[0] * PER_EPOCH + step[1]


def state(replicate: int, level: int, step: tuple[int, int], branch: bool = False) -> dict[str, torch.Tensor]:
    """The saved state_dict: distinct, non-zero weights (also where masked, as open_lth saves them)."""
    shift = 100 * replicate + 10 * level + iteration(step) / 1000 + (0.5 if branch else 0)
    return {
        "fc_layers.0.weight": torch.arange(1, 13, dtype=torch.float32).reshape(3, 4) / 8 + shift,
        "fc_layers.0.bias": torch.tensor([0.5, -0.5, 0.25]) + level,
        "fc.weight": -torch.arange(1, 7, dtype=torch.float32).reshape(2, 3) / 4 - shift,
        "fc.bias": torch.tensor([0.0, 1.0]),
    }


def mask(level: int, branch: bool = False) -> dict[str, torch.Tensor]:
    """Level 0 keeps all 18 weights, level 1 14, level 2 11 (fc.weight is never pruned); a branch keeps as
    many at other places (randomly_prune, layerwise)."""
    first = torch.ones(12, dtype=torch.int32)
    pruned = {0: [], 1: [0, 1, 2, 5], 2: [0, 1, 2, 5, 6, 9, 10]}[level]
    if branch:
        pruned = [11 - i for i in pruned]
    first[pruned] = 0
    return {"fc_layers.0.weight": first.reshape(3, 4), "fc.weight": torch.ones(2, 3, dtype=torch.int32)}


def evaluations(level: int, start: tuple[int, int], end: tuple[int, int], seed: float = 0.0) -> list[tuple[str, int, float]]:
    """The logger's entries of a training from ``start`` to ``end``: at the start step, every epoch
    start, and the end step (standard_callbacks), each test_loss, test_accuracy, test_examples."""
    steps = sorted({iteration(start), *range(PER_EPOCH * (start[0] + (start[1] > 0)), iteration(end) + 1, PER_EPOCH), iteration(end)})
    rows = []
    for k, it in enumerate(steps):
        accuracy = round(0.1 + 0.2 * k - 0.01 * level + seed, 4)
        rows += [("test_loss", it, round(2.3 / (k + 1) + 0.001 * level, 4)), ("test_accuracy", it, accuracy),
                 ("test_examples", it, 10000.0)]
    return rows


def logger_text(rows) -> str:
    return "\n".join(f"{name},{it},{value}" for name, it, value in rows)


def write_training(directory: Path, replicate: int, level: int | None, start, end, rows, *, masks=None, branch=False):
    """The files standard_train (and Mask.save before it) leave in ``directory``."""
    directory.mkdir(parents=True)
    state_level = 0 if level is None else level
    if masks is not None:
        torch.save(masks, directory / "mask.pth")
        total = float(sum(m.numel() for m in masks.values()))
        unpruned = float(sum(m.sum().item() for m in masks.values()))
        (directory / "sparsity_report.json").write_text(json.dumps({"total": total, "unpruned": unpruned}, indent=4))
    for step in (start, end):
        torch.save(state(replicate, state_level, step, branch), directory / f"model_ep{step[0]}_it{step[1]}.pth")
    optimizer = {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.0, "params": [0, 1, 2, 3]}]}
    torch.save({"ep": end[0], "it": end[1], "model_state_dict": state(replicate, state_level, end, branch),
                "optimizer_state_dict": optimizer, "logger": logger_text(rows)}, directory / "checkpoint.pth")
    (directory / "logger").write_text(logger_text(rows))


def write_tree(root: Path) -> Path:
    """``root/lottery_<hash>`` with two replicates of levels 0-2 (rewinding to 500it, a pre-training phase
    each) and a randomly_prune branch on levels 1 and 2 of replicate 1; returns the lottery directory."""
    lottery = root / f"lottery_{LOTTERY_HASH}"
    for replicate in REPLICATES:
        base = lottery / f"replicate_{replicate}"
        write_training(base / "level_pretrain" / "main", replicate, None, (0, 0), REWIND,
                       evaluations(-1, (0, 0), REWIND, seed=replicate / 100))
        for level in LEVELS:
            main = base / f"level_{level}" / "main"
            write_training(main, replicate, level, REWIND, END, evaluations(level, REWIND, END, seed=replicate / 100),
                           masks=mask(level))
            if level == 0:
                (main / "hparams.log").write_text(HPARAMS_LOG)
            if replicate == 1 and level in BRANCH_LEVELS:
                write_training(base / f"level_{level}" / BRANCH, replicate, level, REWIND, END,
                               evaluations(level, REWIND, END, seed=0.05), masks=mask(level, branch=True), branch=True)
    return lottery
