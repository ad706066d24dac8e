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


def test_depth_experiment(tmp_path, capsys):
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
