"""Every plot command, read through matplotlib's own objects: titles, axis labels, legends, colour bars."""
from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
from click.testing import CliRunner

import netarchive
from netarchive.cli import cli
from tests.conftest import random_checkpoint

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Two runs of four levels of a 16-10-8-4 network with 4×4 pixel inputs, and a labelled dataset."""
    base = tmp_path_factory.mktemp("figures")
    with netarchive.open(base / "archive") as archive:
        for run in ("s0", "s1"):
            for level, density in enumerate((0.9, 0.6, 0.35, 0.2)):
                archive.write(random_checkpoint(
                    [16, 10, 8, 4], density=density, seed=10 * int(run[1]) + level, run=run, level=level,
                    input_shape=(1, 4, 4), metrics={"accuracy": 0.9 - level / 10}))
    rng = np.random.default_rng(0)
    np.savez(base / "data.npz", x=rng.normal(size=(40, 16)).astype(np.float32), y=rng.integers(0, 4, 40))
    return base


@pytest.fixture
def figures(monkeypatch):
    """The figures the command saves, in order (``Figure.savefig`` is watched, the file still written)."""
    from matplotlib.figure import Figure

    saved = []
    original = Figure.savefig

    def watch(self, *args, **kwargs):
        saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", watch)
    return saved


def run(study, *args):
    result = CliRunner().invoke(cli, ["--store", str(study / "archive"), *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


def measured_line(figure):
    """The x of the vertical line labelled "measured …" in the figure's legends."""
    for axes in figure.axes:
        for line in axes.get_lines():
            if line.get_label().startswith("measured"):
                return float(line.get_xdata()[0])
    raise AssertionError("no measured threshold line")


def test_measured_threshold_of_a_figure_is_that_of_the_table(study, figures, tmp_path):
    table = json.loads(run(study, "query", "threshold", "--run", "s0", "--level", "2", "--format", "json"))
    run(study, "plot", "robustness", "--run", "s0", "--level", "2", "--data", study / "data.npz", "-o", tmp_path / "r.png")
    run(study, "plot", "percolation", "--run", "s0", "--level", "2", "-o", tmp_path / "p.png")
    assert [measured_line(figure) for figure in figures] == [table[0]["p_c_measured"]] * 2
