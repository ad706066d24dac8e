"""`ingest --model`, `Archive.ingest_model` and the assumed-sequential note: round trips through the
archive (the CLI with a model file; tests/test_store_networks.py has every test model on both backends) and
one-line refusals that leave the archive unchanged."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from netarchive.analysis.forward import evaluate
from netarchive.cli import cli
from netarchive.errors import AlreadyArchived, InputError
from tests import models
from tests.conftest import edge_set
from tests.test_traced import prune_randomly


def data(tmp_path, features=12, samples=20):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(samples, features)).astype(np.float32), rng.integers(0, 3, samples)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    return x, y


def torch_accuracy(model, x, shape, y):
    with torch.no_grad():
        return float((model(torch.tensor(x).reshape(len(x), *shape)).argmax(1).numpy() == y).mean())


def test_ingest_model_archives_a_live_pruned_module(archive, tmp_path):
    model = prune_randomly(models.mlp(), density=0.5)
    x, y = data(tmp_path)
    row = archive.ingest_model(model, run="live", level=2, input_shape=(1, 3, 4), metrics={"accuracy": 0.5})
    assert row.architecture_source.tolist() == ["traced from module Sequential"]
    stored = archive.checkpoint("live", 2)
    assert stored.architecture_source == "traced from module Sequential" and stored.activation == "tanh"
    assert stored.input_shape == (1, 3, 4) and stored.metrics == {"accuracy": 0.5}
    from netarchive.loaders.traced import from_module

    assert edge_set(stored) == edge_set(from_module(model, run="live", level=2))
    assert evaluate([stored], x, y).accuracy.iloc[0] == torch_accuracy(model, x, (1, 3, 4), y)
    with pytest.raises(AlreadyArchived):
        archive.ingest_model(model, run="live", level=2)
    archive.ingest_model(model, run="live", level=2, replace=True, input_shape=(1, 3, 4))
    assert archive.checkpoints("live").architecture_source.tolist() == ["traced from module Sequential"]


def test_ingest_model_archives_a_cnn_and_refuses_a_bad_level(archive):
    model = prune_randomly(models.cnn(), density=0.5)
    archive.ingest_model(model, run="cnn", level=0, input_shape=(1, 8, 8))
    x = np.random.default_rng(0).normal(size=(20, 64)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 3, 20)
    assert evaluate([archive.checkpoint("cnn", 0)], x, y).accuracy.iloc[0] == torch_accuracy(model, x, (1, 8, 8), y)
    archive.rm("cnn")
    with pytest.raises(InputError, match="a level counts pruning rounds"):
        archive.ingest_model(models.mlp(), run="m", level=-1)
    assert archive.checkpoints().empty


@pytest.fixture
def run_cli(tmp_path):
    store = str(tmp_path / "archive")
    return lambda *args: CliRunner().invoke(cli, ["--store", store, *map(str, args)])


def test_ingest_command_with_a_model_file(run_cli, tmp_path):
    model = prune_randomly(models.mlp(), density=0.5)
    torch.save(model.state_dict(), tmp_path / "level_3.pt")
    x, y = data(tmp_path)
    result = run_cli("ingest", tmp_path / "level_3.pt", "--run", "m", "--model", "tests/models.py:mlp", "--input-shape", "1,3,4")
    assert result.exit_code == 0, result.output
    listing = json.loads(run_cli("ls", "--format", "json").output)
    assert [(r["level"], r["architecture_source"]) for r in listing] == [(3, "traced from tests/models.py:mlp")]
    result = run_cli("eval", "--run", "m", "--data", tmp_path / "data.npz", "--format", "json")
    assert result.exit_code == 0 and "assumed" not in result.output
    assert json.loads(result.stdout)[0]["accuracy"] == torch_accuracy(model, x, (1, 3, 4), y)


def test_eval_says_when_the_architecture_was_assumed(run_cli, tmp_path):
    torch.save(models.residual_mlp().state_dict(), tmp_path / "level_0.pt")
    data(tmp_path, features=6)
    assert run_cli("ingest", tmp_path / "level_0.pt", "--run", "res").exit_code == 0
    result = run_cli("eval", "--run", "res", "--data", tmp_path / "data.npz")
    assert result.exit_code == 0
    assert ("note: the architecture of 'res' was assumed sequential (its Linear weights in state_dict order); "
            "ingest with --model to trace the real one") in result.stderr


@pytest.mark.parametrize("arguments, message", [
    (["--model", "tests/models.py:data_dependent"], r"tests/models.py:data_dependent cannot be traced: data-dependent control flow at models.py:\d+ `if x.sum\(\) > 0:`"),
    (["--model", "no_such_package:net"], "cannot import no_such_package: ModuleNotFoundError"),
    (["--model", "tests/models.py:raises"], r"raises\(\) raised RuntimeError: CUDA is not available here"),
    (["--model", "tests/models.py:cnn"], r"tests/models.py:cnn has convolutions: give the shape of one input sample \(--input-shape C,H,W"),
    (["--model", "tests/models.py:cnn", "--input-shape", "1,8,8"], r"level_0.pt: no tensor conv1.weight, which the model tests/models.py:cnn has"),
])
def test_bad_models_are_one_line_errors_and_change_nothing(run_cli, tmp_path, arguments, message):
    import re

    torch.save(models.mlp().state_dict(), tmp_path / "level_0.pt")
    assert run_cli("ingest", tmp_path / "level_0.pt", "--run", "before").exit_code == 0
    before = run_cli("ls", "--format", "json").output
    result = run_cli("ingest", tmp_path / "level_0.pt", "--run", "r", *arguments)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert re.search(message, lines[0]), lines[0]
    assert run_cli("ls", "--format", "json").output == before


def test_conv_state_dict_without_model_names_the_option(run_cli, tmp_path):
    torch.save(models.cnn().state_dict(), tmp_path / "level_0.pt")
    result = run_cli("ingest", tmp_path / "level_0.pt", "--run", "r")
    assert result.exit_code == 1
    assert "conv1.weight has shape (4, 1, 3, 3), a convolution kernel: give the architecture with --model" in result.output


def test_an_archive_written_before_architecture_source_reads_as_assumed(tmp_path):
    """Archives of the previous format have no architecture_source: every checkpoint in them was read as a
    chain, so they list as assumed sequential, read-only or after the column is added on the next write."""
    import ladybug

    import netarchive
    from tests.conftest import random_checkpoint

    with netarchive.open(tmp_path / "a") as archive:
        archive.write(random_checkpoint([4, 3, 2]))
    database = ladybug.Database(str(tmp_path / "a" / "graph.lbdb"))
    connection = ladybug.Connection(database)
    connection.execute("ALTER TABLE Checkpoint DROP architecture_source")
    connection.execute("ALTER TABLE Checkpoint DROP architecture")  # nor did it keep the architecture
    connection.close(), database.close()
    with netarchive.open(tmp_path / "a", read_only=True) as archive:
        assert archive.checkpoints().architecture_source.tolist() == ["assumed sequential"]
        assert archive.checkpoint("r", 0).architecture_source == "assumed sequential"
    with netarchive.open(tmp_path / "a") as archive:
        archive.write(random_checkpoint([4, 3, 2], level=1))
        assert archive.checkpoints().architecture_source.tolist() == ["assumed sequential", "sequential"]
