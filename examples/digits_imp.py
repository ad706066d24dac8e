"""A real iterative-magnitude-pruning run on scikit-learn's 8x8 digits, saved as OpenLTH saves one.

Trains an MLP 64-128-128-10, then repeatedly prunes 20 % of the surviving weights of each layer by
magnitude, rewinds the survivors to their initial values (lottery-ticket style, Frankle & Carbin 2019)
and retrains. Each level is written as ``OUT/level_<L>/main/`` with ``mask.pth``, the weights at the start
and end of training (``model_ep0_it0.pth``, ``model_ep<E>_it0.pth``), ``sparsity_report.json`` and a
``logger`` of test accuracy and loss, so that ``netarchive ingest OUT --run digits`` archives the run.
With ``--archive ARCHIVE`` no checkpoint files are written: the training loop archives each level itself
(:class:`netarchive.integrations.Recorder`) with the same weights, masks, metrics and curves.
``OUT/test.npz`` holds the test split (arrays ``x``, ``y``) for ``netarchive eval`` and ``query robustness``.

    python examples/digits_imp.py out/digits --levels 15
    python examples/digits_imp.py out/digits --levels 15 --archive out/archive --run digits
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn


def data(seed: int):
    """Digits scaled to [0, 1], split 75/25 with a fixed seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    return x_train, y_train, x_test, y_test


def make_model() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The prunable weights: those of the Linear and convolution layers (never a batch norm's scale)."""
    return {f"{name}.weight": module.weight for name, module in model.named_modules()
            if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d))}


def train(model, masks, x, y, epochs: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for batch in order.split(64):
            optimizer.zero_grad()
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
            with torch.no_grad():
                for name, w in weights(model).items():
                    w.mul_(masks[name])


@torch.no_grad()
def evaluate(model, x, y) -> tuple[float, float]:
    model.eval()  # batch norms use their running statistics
    out = model(x)
    return (out.argmax(1) == y).float().mean().item(), nn.functional.cross_entropy(out, y).item()


def prune(model, masks, fraction: float) -> dict[str, torch.Tensor]:
    """Remove ``fraction`` of each layer's surviving weights, smallest magnitude first."""
    pruned = {}
    for name, w in weights(model).items():
        alive = masks[name].bool()
        count = int(round(fraction * alive.sum().item()))
        scores = torch.where(alive, w.detach().abs(), torch.full_like(w, float("inf")))
        drop = scores.flatten().argsort()[:count]
        mask = masks[name].clone().flatten()
        mask[drop] = 0
        pruned[name] = mask.view_as(w)
    return pruned


@dataclass
class Level:
    """One level of an IMP run: its masks, the weights it was rewound to and trained from (``start``), the
    trained ``model`` (pruned weights held at zero) and its test scores."""

    level: int
    masks: dict[str, torch.Tensor]
    start: dict[str, torch.Tensor]
    model: nn.Module
    accuracy: float
    loss: float

    @property
    def kept(self) -> tuple[int, int]:
        """Surviving and total prunable weights."""
        return int(sum(m.sum().item() for m in self.masks.values())), sum(m.numel() for m in self.masks.values())


def imp(model: nn.Module, splits, levels: int, epochs: int, fraction: float, seed: int) -> Iterator[Level]:
    """Iterative magnitude pruning with rewinding to initialisation: train, prune ``fraction`` of each
    layer's surviving weights, rewind the survivors, retrain; one :class:`Level` per level 0 … ``levels``."""
    x_train, y_train, x_test, y_test = splits
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    masks = {name: torch.ones_like(w) for name, w in weights(model).items()}
    for level in range(levels + 1):
        model.load_state_dict(initial)  # rewind to initialisation
        with torch.no_grad():
            for name, w in weights(model).items():
                w.mul_(masks[name])
        start = {k: v.clone() for k, v in model.state_dict().items()}
        train(model, masks, x_train, y_train, epochs, seed + level)
        accuracy, loss = evaluate(model, x_test, y_test)
        yield Level(level, masks, start, model, accuracy, loss)
        masks = prune(model, masks, fraction)


def run(out: Path, levels: int, epochs: int, fraction: float, seed: int, archive: str | None = None,
        run_name: str = "digits") -> None:
    """The IMP run as OpenLTH's files under ``out`` or, with ``archive``, archived level by level from the
    loop (:class:`netarchive.integrations.Recorder`) with the same weights, masks, metrics and curves."""
    torch.manual_seed(seed)
    splits = data(seed)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "test.npz", x=splits[2].numpy(), y=splits[3].numpy())  # for `netarchive eval --data`
    record = None
    if archive is not None:
        from netarchive.integrations import Recorder

        record = Recorder(archive, run=run_name, input_shape=(1, 8, 8),
                          meta={"dataset": "digits", "seed": str(seed), "model": "mlp-64-128-128-10"}, replace=True)
    try:
        for step in imp(make_model(), splits, levels, epochs, fraction, seed):
            if record is None:
                save_level(out / f"level_{step.level}" / "main", step, epochs)
            else:  # what `netarchive ingest` makes of the files save_level writes
                record.level(step.model, step.level, metrics={"accuracy": step.accuracy, "loss": step.loss},
                             curves={"test_loss": ([epochs], [step.loss]), "test_accuracy": ([epochs], [step.accuracy])})
            kept, total = step.kept
            print(f"level {step.level:2d}: {kept:6d}/{total} weights kept, test accuracy {step.accuracy:.3f}")
    finally:
        if record is not None:
            record.close()


def save_level(main: Path, step: Level, epochs: int) -> None:
    """The files OpenLTH leaves for a level: initial and final weights, mask, sparsity report, logger."""
    main.mkdir(parents=True, exist_ok=True)
    torch.save(step.start, main / "model_ep0_it0.pth")
    torch.save(step.model.state_dict(), main / f"model_ep{epochs}_it0.pth")
    torch.save({name: m.to(torch.int64) for name, m in step.masks.items()}, main / "mask.pth")
    kept, total = step.kept
    (main / "sparsity_report.json").write_text(json.dumps({"total": total, "unpruned": kept}))
    (main / "logger").write_text(f"test_loss,{epochs},{step.loss}\ntest_accuracy,{epochs},{step.accuracy}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write the run to")
    parser.add_argument("--levels", type=int, default=15, help="pruning levels after the dense one (default 15)")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs per level (default 30)")
    parser.add_argument("--fraction", type=float, default=0.2, help="fraction pruned per level (default 0.2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--archive", help="archive each level from the loop into this archive (no checkpoint files)")
    parser.add_argument("--run", default="digits", help="the run's name in --archive (default digits)")
    args = parser.parse_args()
    run(args.out, args.levels, args.epochs, args.fraction, args.seed, args.archive, args.run)


if __name__ == "__main__":
    main()
