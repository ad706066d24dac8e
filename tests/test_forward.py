"""Forward passes: exact hand-worked outputs, agreement with torch.nn, scores, and the eval command."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import netarchive.analysis.forward as forward_module
from netarchive.analysis.forward import evaluate, forward, scores
from netarchive.cli import cli
from netarchive.errors import InputError
from netarchive.model import ACTIVATIONS, Checkpoint, Layer
from tests.conftest import random_checkpoint

# x -> relu(W1 x + b1) -> W2 h + b2, worked by hand below.
W1 = np.array([[1.0, -1.0], [0.5, 0.0], [0.0, 2.0]])
B1 = np.array([0.0, -1.0, 0.5])
W2 = np.array([[1.0, 1.0, 0.0], [0.0, -1.0, 1.0]])
B2 = np.array([0.25, 0.0])
X = np.array([[2.0, 1.0], [0.0, 1.0], [4.0, 0.0]], dtype=np.float32)


def tiny(activation="relu", biases=True):
    return Checkpoint("tiny", 0, (
        Layer.from_dense("fc1.weight", W1, B1 if biases else None),
        Layer.from_dense("fc2.weight", W2, B2 if biases else None),
    ), activation=activation)


def test_hand_worked_outputs_and_scores():
    # sample 1: W1x+b1 = [1, 0, 2.5] -> relu same -> [1+0+.25, 0-0+2.5] = [1.25, 2.5]
    # sample 2: [-1, -1, 2.5] -> [0, 0, 2.5] -> [0.25, 2.5]
    # sample 3: [4, 1, 0.5] -> [4+1+.25, -1+.5] = [5.25, -0.5]
    out = forward(tiny(), X)
    np.testing.assert_allclose(out, [[1.25, 2.5], [0.25, 2.5], [5.25, -0.5]], atol=1e-6)
    result = scores(out, np.array([1, 0, 0]))
    assert result["accuracy"] == pytest.approx(2 / 3)
    expected_loss = np.mean([np.log(1 + np.exp(-1.25)), np.log(1 + np.exp(2.25)), np.log(1 + np.exp(-5.75))])
    assert result["loss"] == pytest.approx(expected_loss, abs=1e-6)
    assert scores(out, np.array([[1.0, 2.0], [0.0, 2.0], [5.0, 0.0]], dtype=np.float32))["mse"] == pytest.approx(
        np.mean(np.square([0.25, 0.5, 0.25, 0.5, 0.25, -0.5])))


def test_no_synapses_leaves_only_the_biases():
    keep = [np.zeros(4, bool), np.zeros(4, bool)]
    np.testing.assert_allclose(forward(tiny(), X, keep), np.tile(B2, (3, 1)), atol=1e-7)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dense_above", [0.0, 1.1], ids=["dense", "sparse"])
def test_agrees_with_torch_sequential(activation, dense_above, monkeypatch):
    monkeypatch.setattr(forward_module, "DENSE_ABOVE", dense_above)
    checkpoint = random_checkpoint([20, 15, 10, 5], density=0.3, seed=4)
    rng = np.random.default_rng(1)
    layers = tuple(Layer(l.name, l.inputs, l.outputs, l.src, l.dst, l.w, rng.normal(size=l.outputs)) for l in checkpoint.layers)
    checkpoint = Checkpoint("r", 0, layers, activation=activation)
    modules = []
    for i, layer in enumerate(checkpoint.layers):
        linear = nn.Linear(layer.inputs, layer.outputs)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(layer.dense()))
            linear.bias.copy_(torch.tensor(layer.bias))
        modules.append(linear)
        if i < len(checkpoint.layers) - 1:
            modules.append({"relu": nn.ReLU(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "gelu": nn.GELU(), "identity": nn.Identity()}[activation])
    x = rng.normal(size=(64, 20)).astype(np.float32)
    with torch.no_grad():
        expected = nn.Sequential(*modules)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(forward(checkpoint, x), expected, atol=1e-5)


def test_refuses_mismatched_data():
    with pytest.raises(InputError, match="the dataset has 3 features per sample but the network of 'tiny' has 2 inputs"):
        forward(tiny(), np.ones((2, 3), dtype=np.float32))
    with pytest.raises(InputError, match="class labels must be integers from 0 to 1"):
        scores(np.zeros((2, 2)), np.array([0, 2]))


def test_evaluate_says_when_biases_are_missing():
    table = evaluate([tiny(biases=False)], X, np.array([1, 0, 0]))
    assert table.biases.tolist() == ["none: zeros used"] and table.samples.tolist() == [3]


def test_eval_command_and_stored_metrics(tmp_path):
    torch.save({"fc1.weight": torch.tensor(W1), "fc1.bias": torch.tensor(B1), "fc2.weight": torch.tensor(W2),
                "fc2.bias": torch.tensor(B2)}, tmp_path / "level_0.pt")
    np.savez(tmp_path / "data.npz", x=X, y=np.array([1, 0, 0]))
    np.savez(tmp_path / "wide.npz", x=np.ones((3, 5)), y=np.array([1, 0, 0]))
    store = ["--store", str(tmp_path / "archive")]
    runner = CliRunner()
    assert runner.invoke(cli, [*store, "ingest", str(tmp_path / "level_0.pt"), "--run", "t"]).exit_code == 0
    result = runner.invoke(cli, [*store, "eval", "--run", "t", "--data", str(tmp_path / "data.npz"), "--store-metrics", "--format", "json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["accuracy"] == pytest.approx(2 / 3) and row["biases"] == "stored"
    listing = json.loads(runner.invoke(cli, [*store, "ls", "--format", "json"]).output)
    assert listing[0]["accuracy"] == pytest.approx(2 / 3)
    bad = runner.invoke(cli, [*store, "eval", "--run", "t", "--data", str(tmp_path / "wide.npz")])
    assert bad.exit_code == 1 and "has 5 features per sample" in bad.output
    missing = runner.invoke(cli, [*store, "eval", "--run", "t", "--data", str(tmp_path / "none.npz")])
    assert missing.exit_code == 1 and "no such dataset file" in missing.output


def test_robustness_ends_agree_with_eval_and_biases():
    from netarchive.analysis.percolation import percolation
    from netarchive.analysis.robustness import robustness

    rng = np.random.default_rng(3)
    base = random_checkpoint([12, 9, 4], density=0.6, seed=7)
    layers = tuple(Layer(l.name, l.inputs, l.outputs, l.src, l.dst, l.w, rng.normal(size=l.outputs)) for l in base.layers)
    checkpoint = Checkpoint("r", 0, layers)
    x = rng.normal(size=(50, 12)).astype(np.float32)
    y = rng.integers(0, 4, 50)
    for order in ("descending", "ascending", "random"):
        curve = robustness(checkpoint, x, y, order, points=5, samples=3, seed=1)
        full = evaluate([checkpoint], x, y).iloc[0]
        assert curve.accuracy.iloc[-1] == pytest.approx(full.accuracy) and curve.loss.iloc[-1] == pytest.approx(full.loss)
        biases_only = scores(np.tile(checkpoint.layers[-1].bias, (50, 1)), y)
        assert curve.accuracy.iloc[0] == pytest.approx(biases_only["accuracy"])
        structure = percolation(checkpoint, order, points=5, samples=3, seed=1)
        np.testing.assert_allclose(curve.giant_fraction, structure.giant_fraction)
        assert curve.inputs_connected.iloc[0] == 0 and curve.edges_kept.tolist() == structure.edges_kept.tolist()
    again = robustness(checkpoint, x, y, "random", points=5, samples=3, seed=1)
    assert again.equals(robustness(checkpoint, x, y, "random", points=5, samples=3, seed=1))
    assert not again.accuracy.equals(robustness(checkpoint, x, y, "random", points=5, samples=3, seed=2).accuracy)


def test_incremental_robustness_equals_each_subnetwork_from_scratch():
    """Points in any order, layers crossing DENSE_ABOVE between points, tied weights: the incremental curve is
    exactly forward() and reachable() on each subnetwork, and edge_order is the lexsort it replaced."""
    from netarchive.analysis.components import reachable
    from netarchive.analysis.percolation import edge_order
    from netarchive.analysis.robustness import robustness

    rng = np.random.default_rng(5)
    layers = []
    for l, (n_in, n_out) in enumerate([(20, 30), (30, 25), (25, 6)]):
        weight = np.round(rng.normal(size=(n_out, n_in)), 1)  # many ties in |w|
        weight[rng.random(weight.shape) >= [1.0, 0.3, 0.08][l]] = 0
        layers.append(Layer.from_dense(f"fc{l}.weight", weight, rng.normal(size=n_out)))
    checkpoint = Checkpoint("r", 0, tuple(layers), activation="tanh")
    x = rng.normal(size=(40, 20)).astype(np.float32)
    y = rng.integers(0, 6, 40)
    src, dst, _, _ = checkpoint.edge_list()
    kept = [1.0, 0.02, 0.5, 0.0, 0.07, 0.3, 0.02]
    for order in ("descending", "ascending", "random"):
        ordered = edge_order(checkpoint, order, 2, 0)
        key = np.abs(checkpoint.edge_list()[2]) * (1 if order == "ascending" else -1)
        if order != "random":
            np.testing.assert_array_equal(ordered, np.lexsort((dst, src, key)))
        curve = robustness(checkpoint, x, y, order, kept=kept, samples=1, seed=2)
        for row in curve.itertuples():
            keep = np.zeros(checkpoint.edges, dtype=bool)
            keep[ordered[: row.edges_kept]] = True
            network = checkpoint.subnetwork(keep)
            expected = scores(forward(network, x), y)
            assert (row.accuracy, row.loss) == (expected["accuracy"], expected["loss"])
            assert row.inputs_connected == reachable(network, forward=False).mean()


def test_robustness_keeps_the_strongest_first():
    from netarchive.analysis.robustness import robustness

    # One output per input; the strongest synapse decides sample 0, the weakest sample 1.
    net = Checkpoint("r", 0, (Layer.from_dense("fc", np.array([[3.0, 0.0], [0.0, 1.0]])),))
    x, y = np.eye(2, dtype=np.float32), np.array([0, 1])
    descending = robustness(net, x, y, "descending", points=3)
    ascending = robustness(net, x, y, "ascending", points=3)
    assert descending.accuracy.tolist() == [0.5, 0.5, 1.0]  # with no synapse argmax picks class 0
    assert ascending.accuracy.tolist() == [0.5, 1.0, 1.0]
    with pytest.raises(InputError, match="has 3 features"):
        robustness(net, np.ones((1, 3), dtype=np.float32), np.array([0]))


def test_robustness_commands(tmp_path):
    torch.save({"fc1.weight": torch.tensor(W1), "fc1.bias": torch.tensor(B1), "fc2.weight": torch.tensor(W2),
                "fc2.bias": torch.tensor(B2)}, tmp_path / "level_0.pt")
    np.savez(tmp_path / "data.npz", x=X, y=np.array([1, 0, 0]))
    store = ["--store", str(tmp_path / "archive")]
    runner = CliRunner()
    assert runner.invoke(cli, [*store, "ingest", str(tmp_path / "level_0.pt"), "--run", "t"]).exit_code == 0
    data = ["--run", "t", "--level", "0", "--data", str(tmp_path / "data.npz")]
    result = runner.invoke(cli, [*store, "query", "robustness", *data, "--points", "3", "--format", "json"])
    rows = json.loads(result.output)
    assert [r["edges_kept"] for r in rows] == [0, 4, 8] and rows[-1]["accuracy"] == pytest.approx(2 / 3)
    result = runner.invoke(cli, [*store, "plot", "robustness", *data, "-o", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = runner.invoke(cli, [*store, "query", "robustness", *data, "--order", "sideways"])
    assert bad.exit_code == 2 and "sideways" in bad.output


def test_robustness_refuses_samples_below_one_in_every_order(tmp_path):
    torch.save({"fc1.weight": torch.tensor(W1), "fc2.weight": torch.tensor(W2)}, tmp_path / "level_0.pt")
    np.savez(tmp_path / "data.npz", x=X, y=np.array([1, 0, 0]))
    store = ["--store", str(tmp_path / "archive")]
    runner = CliRunner()
    assert runner.invoke(cli, [*store, "ingest", str(tmp_path / "level_0.pt"), "--run", "t"]).exit_code == 0
    data = ["--run", "t", "--level", "0", "--data", str(tmp_path / "data.npz"), "--samples", "0"]
    for command in (["query", "robustness", "--order", "random"], ["query", "robustness"],
                    ["plot", "robustness", "-o", str(tmp_path / "r.png")]):
        result = runner.invoke(cli, [*store, *command, *data])
        assert result.exit_code == 1, result.output
        assert result.output.strip().splitlines() == ["error: --samples must be a positive integer, got 0"]
    assert not (tmp_path / "r.png").exists()


def test_dataset_of_strings_is_a_one_line_error(tmp_path):
    from netarchive.loaders.datasets import load_dataset

    np.savez(tmp_path / "words.npz", x=np.array([["a", "b"]] * 3), y=np.array([0, 1, 0]))
    with pytest.raises(InputError, match=r"words.npz: x must hold numbers, not <U1"):
        load_dataset(tmp_path / "words.npz")
    np.savez(tmp_path / "labels.npz", x=np.ones((3, 2)), y=np.array(["cat", "dog", "cat"]))
    with pytest.raises(InputError, match=r"labels.npz: y must hold numbers"):
        load_dataset(tmp_path / "labels.npz")


# -- traced networks: the archive's forward pass against torch's own -----------------------------------------
from netarchive.loaders import load  # noqa: E402
from netarchive.loaders.traced import from_module  # noqa: E402
from tests import models  # noqa: E402
from tests.test_traced import prune_randomly  # noqa: E402

TRACED = [("cnn", (1, 8, 8)), ("residual_mlp", (6,)), ("basic_block", (3, 8, 8)), ("depthwise_separable", (4, 6, 6)),
          ("conv1d_net", (2, 9))]


def torch_scores(model, x, y):
    with torch.no_grad():
        logits = model(torch.tensor(x))
    accuracy = float((logits.argmax(1).numpy() == y).mean())
    return logits.numpy(), accuracy, float(torch.nn.functional.cross_entropy(logits, torch.tensor(y)))


@pytest.mark.parametrize("dense_above", [0.0, 1.1], ids=["dense", "sparse"])
@pytest.mark.parametrize("factory, shape", TRACED, ids=[name for name, _ in TRACED])
def test_eval_of_a_traced_pruned_network_equals_torch(factory, shape, dense_above, tmp_path, monkeypatch):
    """CNN with batch norm and max pooling, the residual MLP, a ResNet basic block with a 1x1 projection
    shortcut, a depthwise-separable convolution, 1-D convolutions: live (masks as torch.nn.utils.prune
    holds them) and from the saved state_dict through --model, accuracy equal and loss to 1e-5."""
    monkeypatch.setattr(forward_module, "DENSE_ABOVE", dense_above)
    model = prune_randomly(getattr(models, factory)(), density=0.6, seed=3)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, *shape)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    logits, accuracy, loss = torch_scores(model, x, y)
    torch.save(model.state_dict(), tmp_path / "level_0.pt")
    traced_shape = shape if len(shape) > 1 else None
    [saved] = load([tmp_path / "level_0.pt"], run="r", model=f"tests/models.py:{factory}", input_shape=traced_shape)
    for checkpoint in (from_module(model, run="r", level=0, input_shape=traced_shape), saved):
        assert 0.3 < checkpoint.sparsity < 0.5
        row = evaluate([checkpoint], x.reshape(len(x), -1), y).iloc[0]
        assert row.accuracy == accuracy and row.loss == pytest.approx(loss, abs=1e-5)
        np.testing.assert_allclose(forward(checkpoint, x.reshape(len(x), -1)), logits, atol=1e-5)


def test_the_residual_mlp_read_as_a_chain_is_wrong_and_traced_is_right(tmp_path):
    """The issue's case: without --model the state_dict of `h + relu(fc2(h))` chains and was read silently
    as fc1 -> fc2 -> out; it is now marked as assumed, and the traced network is torch's."""
    model = models.residual_mlp()
    x = np.random.default_rng(5).normal(size=(30, 6)).astype(np.float32)
    logits, _, _ = torch_scores(model, x, np.zeros(30, dtype=np.int64))
    torch.save(model.state_dict(), tmp_path / "level_0.pt")
    [chain] = load([tmp_path / "level_0.pt"], run="r")
    [traced] = load([tmp_path / "level_0.pt"], run="r", model="tests/models.py:residual_mlp")
    assert chain.architecture_source == "assumed sequential" and chain.is_sequential
    assert np.abs(forward(chain, x) - logits).max() > 0.1
    np.testing.assert_allclose(forward(traced, x), logits, atol=1e-5)
