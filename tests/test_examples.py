"""The examples run end to end on tiny settings (issue 9: the depth experiment)."""
import importlib.util
from fractions import Fraction
from pathlib import Path

import pytest

import netarchive

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_depth_experiment(tmp_path, capsys, one_torch_thread):
    width = 16
    table = load_example("depth_experiment").main(
        ["--out", str(tmp_path), "--depths", "2", "3", "--width", str(width), "--epochs", "1", "--samples", "3"]
    )
    assert list(table.columns) == [
        "run", "level", "part", "hidden_layers", "neurons", "edges", "p_c_measured", "p_c_molloy_reed",
        "p_c_closed_form", "p_c_branching", "p_c_seed", "accuracy", "accuracy_at_p_c",
    ]
    assert table[["run", "level", "part"]].values.tolist() == [
        ["depth-2", 0, "random"], ["depth-2", 1, "trained"], ["depth-3", 0, "random"], ["depth-3", 1, "trained"],
    ]
    random = table[table.part == "random"]
    # science.md: D layers of neurons all of width N, dense -> (D-1)/((2D-3)N - (D-1)); here D = H + 2.
    expected = {2: Fraction(3, 5 * 16 - 3), 3: Fraction(4, 7 * 16 - 4)}  # 3/77, 1/27
    for row in random.itertuples():
        assert row.neurons == (row.hidden_layers + 2) * width
        assert row.edges == (row.hidden_layers + 1) * width**2
        assert row.p_c_molloy_reed == pytest.approx(float(expected[row.hidden_layers]), rel=1e-12)
        assert row.p_c_closed_form == float(expected[row.hidden_layers])
        assert row.p_c_seed == pytest.approx(1 / (2 * width - 1))
        assert 0 < row.p_c_measured < 1
    trained = table[table.part == "trained"]
    assert trained.neurons.tolist() == [64 + 2 * width + 10, 64 + 3 * width + 10]
    assert trained.accuracy.between(0, 1).all() and trained.accuracy_at_p_c.between(0, 1).all()
    assert random.accuracy.isna().all()
    assert (tmp_path / "depth_thresholds.png").stat().st_size > 0
    assert "depth-3" in capsys.readouterr().out
    with netarchive.open(tmp_path / "archive", read_only=True) as archive:
        assert archive.levels("depth-2") == [0, 1]
        assert archive.checkpoint("depth-3", 1).metrics["test_accuracy"] == pytest.approx(trained.accuracy.iloc[1], abs=1e-6)


def test_digits_cnn_demo_archives_the_trained_modules(tmp_path, one_torch_thread):
    """The CNN demo (tiny settings): each archived level is the trained module under its masks, kernel
    weight for kernel weight, and its eval from the archive equals torch's test accuracy and loss."""
    import numpy as np
    import torch

    from netarchive.analysis.forward import evaluate

    demo = load_example("digits_cnn")
    with netarchive.open(tmp_path / "archive") as archive:
        demo.run(archive, "cnn", levels=2, epochs=1, fraction=0.2, seed=0, replace=False)
    torch.manual_seed(0)
    splits = demo.images(0)
    x_test, y_test = splits[2].reshape(len(splits[2]), -1).numpy(), splits[3].numpy()
    with netarchive.open(tmp_path / "archive", read_only=True) as archive:
        assert archive.levels("cnn") == [0, 1, 2]
        for step in demo.imp(demo.make_model(), splits, 2, 1, 0.2, 0):  # the same run again: deterministic
            stored = archive.checkpoint("cnn", step.level)
            assert stored.architecture_source == "traced from module DigitsCNN"
            assert [c.kind for c in stored.connections] == ["add", "add", "flatten"]
            assert [bn.name for bn in stored.batchnorms] == ["bn1", "bn2", "bn3"]
            weights = dict(step.model.named_parameters())
            for layer in stored.layers:
                mask = step.masks[layer.name].numpy().astype(bool)
                np.testing.assert_array_equal(layer.mask(), mask)
                np.testing.assert_array_equal(layer.dense(), weights[layer.name].detach().numpy() * mask)
            assert stored.edges == step.kept[0] and stored.metrics == {"accuracy": step.accuracy, "loss": step.loss}
            with torch.no_grad():
                out = step.model.eval()(splits[2])
            scores = evaluate([stored], x_test, y_test).iloc[0]
            assert scores.accuracy == (out.argmax(1).numpy() == y_test).mean()
            assert scores.loss == pytest.approx(step.loss, abs=1e-5)
