"""Archiving from the training loop: the plain hook (Recorder) and the Lightning callback, in short real
trainings on the digits, each level's archive equal to the module's masked weights at that level."""
import importlib
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import netarchive
from netarchive.errors import InputError
from netarchive.integrations import Recorder


def digits(n=256):
    from sklearn.datasets import load_digits

    data = load_digits()
    return torch.tensor(data.data[:n] / 16.0, dtype=torch.float32), torch.tensor(data.target[:n], dtype=torch.long)


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))


def train_steps(model, x, y, steps=5):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(steps):
        batch = slice(32 * step, 32 * step + 32)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()


def prune_level(model, amount=0.3):
    for layer in (model[0], model[2]):
        prune.l1_unstructured(layer, "weight", amount=amount)


def dense(layer):
    """The archived layer as a dense (outputs, inputs) matrix, zeros where no synapse survives."""
    matrix = np.zeros((layer.outputs, layer.inputs), dtype=np.float32)
    matrix[layer.dst, layer.src] = layer.w
    return matrix


def assert_archived_as(checkpoint, model):
    """The archived weights, biases and masks are exactly the module's (weight * mask where pruned)."""
    for archived, module in zip(checkpoint.layers, (model[0], model[2])):
        pruned = hasattr(module, "weight_mask")  # module.weight is only recomputed by a forward pass
        weight = (module.weight_orig * module.weight_mask if pruned else module.weight).detach().numpy()
        np.testing.assert_array_equal(dense(archived), weight)
        assert archived.edges == int((weight != 0).sum())
        np.testing.assert_array_equal(archived.bias, module.bias.detach().numpy())
        if pruned:
            assert archived.edges == int(module.weight_mask.sum())


def test_recorder_archives_each_level_of_a_training_loop(tmp_path):
    x, y = digits()
    model = mlp()
    expected = []
    with Recorder(tmp_path / "archive", run="loop", input_shape=(1, 8, 8), meta={"dataset": "digits"}) as record:
        for level in range(3):
            if level:
                prune_level(model)
            train_steps(model, x, y)
            with torch.no_grad():
                accuracy = (model(x).argmax(1) == y).float().mean()
            record.level(model, level, metrics={"accuracy": accuracy}, curves={"train_loss": ([1, 5], [2.5, 1.25])})
            expected.append(({name: p.detach().clone() for name, p in model.named_parameters()},
                             {name: b.clone() for name, b in model.named_buffers()}, float(accuracy)))
            assert model.training  # left as it was
    with netarchive.open(tmp_path / "archive", read_only=True) as archive:
        assert archive.levels("loop") == [0, 1, 2]
        listing = archive.checkpoints("loop")
        assert listing["accuracy"].tolist() == [accuracy for _, _, accuracy in expected]
        assert listing["edges"].tolist() == [64 * 16 + 16 * 10, 717 + 112, 502 + 78]  # 30 % of the survivors pruned each level, rounded
        for level, (parameters, buffers, _) in enumerate(expected):
            replay = mlp()
            if level:
                prune_level(replay)
            replay.load_state_dict({**parameters, **buffers})
            checkpoint = archive.checkpoint("loop", level)
            assert_archived_as(checkpoint, replay)
            assert checkpoint.meta == {"dataset": "digits"} and checkpoint.input_shape == (1, 8, 8)
            assert {k: (i.tolist(), v.tolist()) for k, (i, v) in checkpoint.curves.items()} == {"train_loss": ([1, 5], [2.5, 1.25])}


def test_recorder_traces_once_and_again_when_the_architecture_changes(tmp_path, monkeypatch):
    """Levels of an unchanged module (pruned with torch.nn.utils.prune in between) reuse the first trace; a
    module resized, a layer swapped or another input shape is traced again, and archived as it now is."""
    import netarchive.loaders.traced as traced

    traces, real = [], traced.trace
    monkeypatch.setattr(traced, "trace", lambda *args, **kwargs: traces.append(args[0]) or real(*args, **kwargs))
    x, y = digits()
    model = mlp()
    with Recorder(tmp_path / "archive", run="loop") as record:
        for level in range(3):
            if level:
                prune_level(model)
            train_steps(model, x, y)
            record.level(model, level)
        assert len(traces) == 1
        wider = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        record.level(wider, 3)
        swapped = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
        record.level(swapped, 4)
        record.level(swapped, 5)
        assert traces == [model, wider, swapped]
        record.input_shape = (1, 8, 8)
        record.level(swapped, 6)
        assert len(traces) == 4
    with netarchive.open(tmp_path / "archive", read_only=True) as archive:
        for level, module in enumerate([model] * 3 + [wider] + [swapped] * 3):
            assert archive.checkpoint("loop", level).widths == (64, module[0].out_features, 10)
        for level, module in ((2, model), (3, wider), (5, swapped)):  # the loop's model as it was at its last level
            assert_archived_as(archive.checkpoint("loop", level), module)
        assert archive.checkpoint("loop", 6).input_shape == (1, 8, 8) and archive.checkpoint("loop", 5).input_shape is None


def test_recorder_into_an_open_archive_refuses_a_level_twice(tmp_path):
    with netarchive.open(tmp_path / "archive") as archive:
        record = Recorder(archive, run="r")
        record.level(mlp(), 0)
        with pytest.raises(netarchive.errors.AlreadyArchived, match=r"run .r. already has level\(s\) 0 in the archive"):
            record.level(mlp(1), 0)
        Recorder(archive, run="r", replace=True).level(mlp(1), 0)
        assert_archived_as(archive.checkpoint("r", 0), mlp(1))
        record.close()  # not its archive: still open
        assert archive.levels("r") == [0]
    with pytest.raises(InputError, match="give the run a name"):
        Recorder(tmp_path / "archive", run="")


def test_the_lightning_callback_archives_each_fit_as_a_level(tmp_path):
    pl = pytest.importorskip("lightning.pytorch")
    from netarchive.integrations.lightning import ArchiveCallback

    x, y = digits()

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = mlp()

        def forward(self, inputs):
            return self.net(inputs)

        def training_step(self, batch, _):
            loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
            self.log("train/loss", loss, on_step=True, on_epoch=False)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    module = Module()
    callback = ArchiveCallback(tmp_path / "archive", run="pl", input_shape=(1, 8, 8), module=lambda m: m.net)
    logged = []
    for level in range(2):
        if level:
            prune_level(module.net)
        trainer = pl.Trainer(max_steps=4, callbacks=[callback], logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
        trainer.fit(module, loader)
        logged.append((float(trainer.callback_metrics["train/loss"]),
                       {name: p.detach().clone() for name, p in module.net.named_parameters()},
                       {name: b.clone() for name, b in module.net.named_buffers()}))
    callback.close()
    with netarchive.open(tmp_path / "archive", read_only=True) as archive:
        assert archive.levels("pl") == [0, 1]
        assert archive.checkpoints("pl")["train_loss"].tolist() == [loss for loss, _, _ in logged]
        for level, (_, parameters, buffers) in enumerate(logged):
            replay = mlp()
            if level:
                prune_level(replay)
            replay.load_state_dict({**parameters, **buffers})
            assert_archived_as(archive.checkpoint("pl", level), replay)


def test_the_lightning_callback_without_lightning_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightning", None)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", None)
    monkeypatch.setitem(sys.modules, "pytorch_lightning", None)
    monkeypatch.delitem(sys.modules, "netarchive.integrations.lightning", raising=False)
    with pytest.raises(ImportError) as raised:
        importlib.import_module("netarchive.integrations.lightning")
    assert str(raised.value) == (
        "netarchive.integrations.lightning needs PyTorch Lightning: pip install 'netarchive[lightning]'")


def test_the_digits_demo_archived_from_its_loop_equals_its_files_ingested(tmp_path, digits_run):
    """examples/digits_imp.py --archive (the Recorder) archives what `netarchive ingest` makes of its files
    (``digits_run``: the same script with the same settings, without --archive)."""
    import subprocess
    from pathlib import Path

    from click.testing import CliRunner

    from netarchive.cli import cli
    from tests.conftest import DIGITS_SETTINGS

    script = Path(__file__).resolve().parents[1] / "examples" / "digits_imp.py"
    subprocess.run([sys.executable, script, tmp_path / "loop", *DIGITS_SETTINGS, "--archive", tmp_path / "loop-archive"],
                   check=True, capture_output=True)
    ingested = CliRunner().invoke(cli, ["--store", str(tmp_path / "files-archive"), "ingest", str(digits_run), "--run",
                                        "digits", "--input-shape", "1,8,8", "--meta", "dataset=digits", "--meta", "seed=0",
                                        "--meta", "model=mlp-64-128-128-10"])
    assert ingested.exit_code == 0, ingested.output
    assert not list((tmp_path / "loop").glob("level_*/main/*.pth"))  # no checkpoint files
    with netarchive.open(tmp_path / "files-archive", read_only=True) as files, \
            netarchive.open(tmp_path / "loop-archive", read_only=True) as loop:
        listed = [archive.checkpoints().drop(columns="architecture_source") for archive in (files, loop)]
        assert listed[0].equals(listed[1]) and listed[0]["level"].tolist() == [0, 1, 2]
        assert loop.checkpoints()["architecture_source"].unique().tolist() == ["traced from module Sequential"]
        for level in range(3):
            a, b = files.checkpoint("digits", level), loop.checkpoint("digits", level)
            assert (a.meta, a.input_shape, a.metrics) == (b.meta, b.input_shape, b.metrics) and a.metrics
            assert {k: (i.tolist(), v.tolist()) for k, (i, v) in a.curves.items()} == {
                k: (i.tolist(), v.tolist()) for k, (i, v) in b.curves.items()}
            for x, y in zip(a.layers, b.layers):
                np.testing.assert_array_equal(dense(x), dense(y))
                np.testing.assert_array_equal(x.bias, y.bias)
        summaries = [archive.summary(["digits"]).drop(columns="architecture_source", errors="ignore") for archive in (files, loop)]
        pd.testing.assert_frame_equal(*summaries)
