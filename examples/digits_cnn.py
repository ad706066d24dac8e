"""The second demo run: a small residual CNN with batch norm, pruned by IMP on the 8x8 digits and archived
from the training loop with ``Archive.ingest_model`` (no checkpoint files).

The network: a 3x3 convolution 1→8 with batch norm and ReLU, one residual basic block (two 3x3
convolutions 8→8 with batch norm, identity shortcut, ReLU after the addition), 2x2 max pooling, flatten,
Linear 128→10: 2,504 prunable weights. It is trained and pruned exactly as the MLP demo
(``examples/digits_imp.py``: the same split, seeds, schedule of 20 % of each layer's surviving weights per
level, rewinding to initialisation); each level is archived, its masks attached with
``torch.nn.utils.prune``, as level L of the run with its test accuracy and loss.

    python examples/digits_cnn.py --store out/archive --levels 15 [--run digits-cnn] [--replace]
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import prune

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits_imp import data, imp  # noqa: E402

import netarchive  # noqa: E402

INPUT_SHAPE = (1, 8, 8)


class DigitsCNN(nn.Module):
    """conv–BN–ReLU, one residual basic block (conv–BN–ReLU–conv–BN, + identity, ReLU), max pool, Linear."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        self.conv2, self.bn2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        self.conv3, self.bn3 = nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(channels * 4 * 4, 10)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(h)))
        out = torch.relu(self.bn3(self.conv3(out)) + h)
        return self.fc(torch.flatten(self.pool(out), 1))


def make_model() -> DigitsCNN:
    """The untrained network (a ``--model`` factory: ``examples/digits_cnn.py:make_model``)."""
    return DigitsCNN()


def with_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of ``model`` with ``masks`` attached as ``torch.nn.utils.prune`` does in a training script."""
    pruned = copy.deepcopy(model)
    for name, mask in masks.items():
        prune.custom_from_mask(pruned.get_submodule(name.removesuffix(".weight")), "weight", mask)
    return pruned


def images(seed: int):
    """The MLP demo's split, each sample a 1×8×8 image (``netarchive eval`` reshapes the 64 pixels itself)."""
    x_train, y_train, x_test, y_test = data(seed)
    return x_train.view(-1, *INPUT_SHAPE), y_train, x_test.view(-1, *INPUT_SHAPE), y_test


def run(archive, name: str, levels: int, epochs: int, fraction: float, seed: int, replace: bool) -> None:
    torch.manual_seed(seed)
    for step in imp(make_model(), images(seed), levels, epochs, fraction, seed):
        archive.ingest_model(with_masks(step.model, step.masks), run=name, level=step.level, input_shape=INPUT_SHAPE,
                             metrics={"accuracy": step.accuracy, "loss": step.loss}, replace=replace)
        kept, total = step.kept
        print(f"level {step.level:2d}: {kept:5d}/{total} weights kept, test accuracy {step.accuracy:.3f}, archived")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=None, help="the archive (default: $NETARCHIVE_STORE or the default archive)")
    parser.add_argument("--run", default="digits-cnn", help="name of the run (default digits-cnn)")
    parser.add_argument("--levels", type=int, default=15, help="pruning levels after the dense one (default 15)")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs per level (default 6: the CNN learns the digits in fewer than the MLP)")
    parser.add_argument("--fraction", type=float, default=0.2, help="fraction pruned per level (default 0.2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replace", action="store_true", help="overwrite levels already archived")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # convolutions this small run 10-20x slower on two threads of a busy machine
    with netarchive.open(args.store) as archive:
        run(archive, args.run, args.levels, args.epochs, args.fraction, args.seed, args.replace)


if __name__ == "__main__":
    main()
