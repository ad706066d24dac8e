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
    """Two runs of four levels of a 16-10-10-4 network with 4×4 pixel inputs, one with 3×2×2 colour inputs, and a
    labelled dataset."""
    base = tmp_path_factory.mktemp("figures")
    with netarchive.open(base / "archive") as archive:
        for run in ("s0", "s1"):
            for level, density in enumerate((0.9, 0.6, 0.35, 0.2)):
                archive.write(random_checkpoint(
                    [16, 10, 10, 4], density=density, seed=10 * int(run[1]) + level, run=run, level=level,
                    input_shape=(1, 4, 4), metrics={"accuracy": 0.9 - level / 10}))
        archive.write(random_checkpoint([12, 8, 4], density=0.5, seed=7, run="rgb", input_shape=(3, 2, 2)))
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
            if line.get_label().startswith("p_c measured"):
                return float(line.get_xdata()[0])
    raise AssertionError("no measured threshold line")


def test_measured_threshold_of_a_figure_is_that_of_the_table(study, figures, tmp_path):
    table = json.loads(run(study, "query", "threshold", "--run", "s0", "--level", "2", "--format", "json"))
    run(study, "plot", "robustness", "--run", "s0", "--level", "2", "--data", study / "data.npz", "-o", tmp_path / "r.png")
    run(study, "plot", "percolation", "--run", "s0", "--level", "2", "-o", tmp_path / "p.png")
    assert [measured_line(figure) for figure in figures] == [table[0]["p_c_measured"]] * 2


# ---- what every figure must be ------------------------------------------------------------------------

def texts(figure):
    """The drawn texts of a figure, each with its place on the canvas: the figure's, the axes' (titles,
    labels, texts in cells), the legends' and the tick labels inside the view."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)  # the saved figure was closed: draw it again off-screen
    canvas.draw()
    renderer = canvas.get_renderer()
    drawn = labels_of(figure)
    for axes in figure.axes:
        if not axes.get_visible():
            continue
        drawn += axes.texts
        for axis in (axes.xaxis, axes.yaxis) if axes.axison else ():
            low, high = sorted(axis.get_view_interval())
            for ticks in (axis.get_major_ticks(), axis.get_minor_ticks()):
                drawn += [tick.label1 for tick in ticks if low <= tick.get_loc() <= high and tick.label1.get_visible()]
    return [(t, t.get_window_extent(renderer)) for t in drawn if t.get_visible() and t.get_text().strip()]


def labels_of(figure):
    """Titles, axis labels, figure titles and legend entries: the texts that must not run into each other."""
    named = [figure._suptitle, figure._supxlabel, figure._supylabel]
    for axes in figure.axes:
        if axes.get_visible():
            named += [axes.title, axes._left_title, axes._right_title, axes.xaxis.label, axes.yaxis.label]
    for legend in figure.legends + [a.get_legend() for a in figure.axes if a.get_legend() is not None]:
        named += legend.get_texts()
    return [t for t in named if t is not None]


def check_figure(figure):
    """Readable at paper size: 7.2 in wide at most, no text under 6 pt, every text inside the figure, and no
    title, label or legend entry on top of another."""
    width, _ = figure.get_size_inches()
    assert width <= 7.2 + 1e-9
    frame = figure.bbox
    placed = texts(figure)
    for text, box in placed:
        assert text.get_fontsize() >= 6, text.get_text()
        assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1 and frame.y0 - 1 <= box.y0 and box.y1 <= frame.y1 + 1, \
            f"{text.get_text()!r} is cut off"
    where = dict(placed)
    named = [t for t in labels_of(figure) if t in where]
    for i, a in enumerate(named):
        for b in named[i + 1:]:
            assert not where[a].overlaps(where[b]), f"{a.get_text()!r} overlaps {b.get_text()!r}"


def legend_texts(figure):
    legends = figure.legends + [a.get_legend() for a in figure.axes if a.get_legend() is not None]
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def colour_bars(figure):
    """The labels of the figure's colour bars."""
    return [a.get_ylabel() or a.get_xlabel() for a in figure.axes if a.get_label() == "<colorbar>"]


def panels(figure):
    return [a for a in figure.axes if a.get_visible() and a.get_label() != "<colorbar>"]


def draw(study, figures, tmp_path, *args, name="figure.png"):
    run(study, "plot", *args, "-o", tmp_path / name)
    [figure] = figures[-1:]
    check_figure(figure)
    return figure


def test_percolation_figures(study, figures, tmp_path):
    one = draw(study, figures, tmp_path, "percolation", "--run", "s0", "--level", "2")
    [axes] = panels(one)
    assert axes.get_title() == "Percolation: s0, level 2 (sparsity " + f"{axes.get_title().split('sparsity ')[1]}"
    assert axes.get_xlabel() == "synapses kept (fraction of the checkpoint's)"
    assert axes.get_ylabel() == "giant component\n(fraction of neurons)"
    entries = legend_texts(one)
    assert entries[:3] == ["strongest |w| kept first", "weakest |w| kept first", "random order"]
    assert [e.split(" = ")[0] for e in entries[3:]] == ["p_c measured", "p_c Molloy–Reed", "p_c branching", "p_c 1/(2N−1)"]
    assert colour_bars(one) == []
    every = draw(study, figures, tmp_path, "percolation", "--run", "s0")
    assert panels(every)[0].get_title() == "Percolation: s0, 4 levels"
    assert colour_bars(every) == ["sparsity (fraction pruned)"]
    assert legend_texts(every) == ["strongest |w| kept first", "weakest |w| kept first", "random order",
                                   "p_c measured", "p_c Molloy–Reed", "p_c branching", "p_c 1/(2N−1)"]


def test_degree_figures(study, figures, tmp_path):
    one = draw(study, figures, tmp_path, "degrees", "--run", "s0", "--level", "1")
    assert [a.get_xlabel() for a in panels(one)] == ["degree k (synapses of a neuron)", "|strength| |S| (|Σ w| of its synapses)"]
    assert {a.get_ylabel() for a in panels(one)} == {"P(X ≥ x)"}
    assert one._suptitle.get_text().startswith("Degree and strength distributions: s0, level 1")
    assert "neurons" in legend_texts(one) and any(e.startswith("power law α = ") for e in legend_texts(one))
    every = draw(study, figures, tmp_path, "degrees", "--run", "s0")
    assert colour_bars(every) == ["sparsity (fraction pruned)"]
    assert legend_texts(every) == ["neurons (one colour per level)", "fitted power-law tail"]


def test_robustness_figure(study, figures, tmp_path):
    figure = draw(study, figures, tmp_path, "robustness", "--run", "s1", "--level", "1", "--data", study / "data.npz")
    top, bottom = panels(figure)
    assert top.get_title().startswith("s1, level 1 (sparsity ")
    assert (top.get_ylabel(), bottom.get_ylabel()) == ("test accuracy", "giant component\n(fraction of neurons)")
    assert bottom.get_xlabel() == "synapses kept (fraction of the checkpoint's)"
    entries = legend_texts(figure)
    assert entries[:3] == ["strongest |w| kept first", "random order", "chance (0.25)"]
    assert [e.split(" = ")[0] for e in entries[3:]] == ["p_c measured", "p_c Molloy–Reed", "p_c branching", "p_c 1/(2N−1)"]


def test_persistence_figures(study, figures, tmp_path):
    curves = draw(study, figures, tmp_path, "persistence", "--run", "s0")
    [axes] = panels(curves)
    assert (axes.get_title(), axes.get_xlabel(), axes.get_ylabel()) == (
        "s0: neural persistence per weight layer", "weights remaining (%)", "normalised neural persistence")
    assert legend_texts(curves) == ["0 fc0 (linear 16→10)", "1 fc1 (linear 10→10)", "2 fc2 (linear 10→4)", "mean over layers"]
    assert axes.xaxis_inverted() and axes.get_xscale() == "log"
    diagram = draw(study, figures, tmp_path, "persistence", "--run", "s0", "--layer", "fc1.weight")
    assert diagram._suptitle.get_text() == "Persistence diagram of layer 1 (fc1): s0, level 3"
    left, right = panels(diagram)
    assert (left.get_xlabel(), left.get_ylabel()) == ("birth (all neurons are born at 1)", "death (normalised |w|)")
    assert (right.get_xlabel(), right.get_ylabel()) == ("persistence = 1 − death", "points of the diagram")
    assert legend_texts(diagram)[1].endswith(("component", "components")) and legend_texts(diagram)[2] == "birth = death"


def test_locality_figure(study, figures, tmp_path):
    figure = draw(study, figures, tmp_path, "locality", "--run", "s0", "--level", "2", "--units", "6")
    assert figure._suptitle.get_text().startswith("Locality of s0, level 2 (sparsity ")
    units, maps = figure.subfigs
    assert units._suptitle.get_text() == "The 6 most-connected units of layer 0 (fc0): unit #, in-degree k, locality L"
    assert colour_bars(figure) == ["|w| (grey: none)", "pixel pairs in a unit", "units of layer 0 (fc0) reading it"]
    shown = [a for a in units.axes if a.get_visible() and a.get_label() != "<colorbar>"]
    assert len(shown) == 6 and all(a.get_title().startswith("#") for a in shown)
    heat = [a for a in maps.axes if a.get_label() != "<colorbar>"]
    assert [a.get_title() for a in heat] == ["same-channel pairs:\nobserved", "same-channel pairs:\nrandom expectation",
                                            "pixel out-degree"]
    assert heat[0].get_xlabel() == "dx (pixels)" and heat[0].get_ylabel() == "dy (pixels)"
    rgb = draw(study, figures, tmp_path, "locality", "--run", "rgb", "--units", "3")
    assert "R, G, B = |w| of each input channel" in rgb.subfigs[0]._suptitle.get_text()
    assert colour_bars(rgb) == ["pixel pairs in a unit", "pixel pairs in a unit", "units of layer 0 (fc0) reading it"]


def test_motif_figures(study, figures, tmp_path):
    over = draw(study, figures, tmp_path, "motifs", "--runs", "s0,s1", "--over-sparsity", "--null", "bernoulli",
                "--motif", "chain", "--motif", "bifan", "--motif", "converging")
    assert over._suptitle.get_text() == "Motif z-scores over the pruning levels (bernoulli null, 2 runs)"
    assert panels(over)[0].get_ylabel() == "z-score (SDs from\nthe null mean)"
    assert [a.get_title() for a in panels(over)] == ["converging", "chain", "bifan"]
    assert {a.get_xlabel() for a in panels(over)} == {"weights remaining (%)"}
    assert legend_texts(over) == ["one checkpoint (run, level)", "median over runs, per level", "z = 0 (as the null)"]
    spread = draw(study, figures, tmp_path, "motifs", "--runs", "s0,s1", "--level", "2", "--null", "bernoulli")
    [axes] = panels(spread)
    assert axes.get_title() == "Motif z-scores at level 2 (bernoulli null, 2 runs)"
    assert axes.get_ylabel() == "z-score (SDs from the null mean)"
    assert [t.get_text() for t in axes.get_xticklabels()][:3] == ["edge", "diverging", "converging"]
    assert legend_texts(spread) == ["quartiles, whiskers to 1.5 IQR", "one run"]


def test_compare_figure(study, figures, tmp_path):
    figure = draw(study, figures, tmp_path, "compare", "--runs", "s0,s1")
    assert figure._suptitle.get_text() == "Mask overlap between runs at level 3"
    layers = panels(figure)
    assert [a.get_title().split("\n")[0] for a in layers] == ["layer 0 (fc0)", "layer 1 (fc1)", "layer 2 (fc2)"]
    assert all(a.get_title().split("\n")[1].startswith("chance ") for a in layers)
    assert colour_bars(figure) == ["mask Jaccard index"]
    for axes in layers:
        matrix = axes.get_images()[0].get_array()
        assert np.ma.getmaskarray(matrix).diagonal().all() or np.isnan(np.ma.getdata(matrix).diagonal()).all()
        values = [float(t.get_text()) for t in axes.texts]
        assert len(values) == 2 and values[0] == values[1]  # the two off-diagonal cells, printed
    with netarchive.open(study / "archive", read_only=True) as archive:
        from netarchive.analysis.compare import compare_runs

        table = compare_runs([archive.checkpoint("s0", 3), archive.checkpoint("s1", 3)])
    jaccard = table[table.metric == "jaccard"].value.tolist()
    assert [float(a.texts[0].get_text()) for a in layers] == pytest.approx(jaccard, abs=0.005)


def test_summary_figure(study, figures, tmp_path):
    figure = draw(study, figures, tmp_path, "summary")
    assert figure._suptitle.get_text() == "3 runs, 9 checkpoints"
    shown = panels(figure)
    assert [a.get_ylabel() for a in shown][:2] == ["test accuracy", "giant component\n(fraction of neurons)"]
    assert all(a.get_legend() is None for a in shown) and len(figure.legends) == 1  # one shared legend
    assert legend_texts(figure) == ["rgb", "s0", "s1", "mean over runs", "± 1 SD"]
    assert all(line.get_marker() == "o" for line in shown[0].get_lines()[:3])  # the runs are marked


def test_figures_in_pdf_and_svg_and_nothing_else(study, tmp_path):
    for suffix, magic in ((".pdf", b"%PDF"), (".svg", b"<?xml")):
        run(study, "plot", "persistence", "--run", "s0", "-o", tmp_path / f"p{suffix}")
        assert (tmp_path / f"p{suffix}").read_bytes()[:5].startswith(magic)
    result = CliRunner().invoke(cli, ["--store", str(study / "archive"), "plot", "persistence", "--run", "s0",
                                      "-o", str(tmp_path / "p.jpg")])
    assert result.exit_code == 1 and result.output == f"error: cannot draw {tmp_path / 'p.jpg'}: give a .png, .pdf or .svg file\n"


# ---- convolutional and residual networks (drawn from checkpoints in memory: the stores hold chains today) ----

def test_figures_of_a_residual_cnn(figures, tmp_path):
    import dataclasses

    from netarchive.analysis.persistence import persistence_diagram
    from netarchive.cli.percolation import draw_degrees, draw_percolation
    from netarchive.cli.spanning import draw_curves, draw_diagram
    from netarchive.loaders.traced import from_module
    from netarchive.zoo import openlth
    from tests import models

    block = from_module(models.basic_block(), run="block", level=1, input_shape=(3, 4, 4))
    draw_percolation([block], str(tmp_path / "p.png"), samples=3)
    check_figure(figures[-1])
    [axes] = panels(figures[-1])
    assert axes.get_title().split("\n")[1] == "channel graph, connections always present"
    assert "p_c 1/(2N−1)" not in " ".join(legend_texts(figures[-1]))  # the seed's threshold is for chains only
    draw_degrees([block, dataclasses.replace(block, level=2)], str(tmp_path / "d.png"))
    check_figure(figures[-1])
    assert figures[-1]._suptitle.get_text() == "Degree and strength distributions: block, 2 levels\nchannel graph"

    net = from_module(openlth.cifar_resnet_20(), run="r20", level=0, input_shape=(3, 32, 32))
    magnitude = np.abs(net.edge_list()[2])
    levels = [net, dataclasses.replace(net.subnetwork(magnitude >= np.quantile(magnitude, 0.8)), level=1)]
    draw_curves(levels, str(tmp_path / "np.png"))
    curves = figures[-1]
    check_figure(curves)
    assert legend_texts(curves) == ["mean over layers"]  # 22 layers: named on the colour bar, coloured by depth
    assert colour_bars(curves) == ["weight layer (forward index, module, shape)"]
    [bar] = [a for a in curves.axes if a.get_label() == "<colorbar>"]
    names = [t.get_text() for t in bar.get_yticklabels()]
    assert names[7] == "7 blocks.3.conv1 (conv 3×3, 16→32, stride 2)" and names[21] == "21 fc (linear 64→10)"
    from netarchive.cli.compare import draw_compare

    other = dataclasses.replace(levels[0].subnetwork(magnitude >= np.quantile(magnitude, 0.7)), run="r20b", level=1)
    draw_compare([levels[1], other], str(tmp_path / "compare.png"))
    compare = figures[-1]
    check_figure(compare)
    assert len(panels(compare)) == 22 and compare._suptitle.get_text() == "Mask overlap between runs at level 1"
    assert panels(compare)[7].get_title().split("\n")[:2] == ["layer 7", "(blocks.3.conv1)"]  # narrow panels
    draw_diagram(persistence_diagram(levels[1], 7), str(tmp_path / "diagram.png"), "layer 7 (blocks.3.conv1)")
    check_figure(figures[-1])
    assert figures[-1]._suptitle.get_text() == "Persistence diagram of layer 7 (blocks.3.conv1), channel graph: r20, level 1"


def test_summary_figure_of_a_short_last_row_has_every_column_s_ticks(figures, tmp_path):
    import pandas as pd

    from netarchive.cli.study import draw_summary

    table = pd.DataFrame({"run": ["a"] * 3, "level": [0, 1, 2], "sparsity": [0.0, 0.5, 0.8],  # four panels: 3 + 1
                          "giant_fraction": [1.0, 0.9, 0.8], "inputs_connected": [1.0, 1.0, 0.9],
                          "np_normalized_mean": [0.6, 0.62, 0.7], "z_chain": [np.nan, 1.0, 2.0]})
    draw_summary(table, str(tmp_path / "s.png"))
    figure = figures[-1]
    check_figure(figure)
    shown = panels(figure)
    assert [bool(a.get_xlabel()) for a in shown] == [False, True, True, True]  # the lowest panel of each column
    assert all(any(t.get_text() for t in a.get_xticklabels()) for a in shown[1:])
