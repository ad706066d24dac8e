"""``netarchive plot``: figures a user would rather look at than read, written as PNG, PDF or SVG files.

Analysis modules add their plot commands to the :data:`plot` group, draw on :func:`new_figure` and save with
:func:`save_figure`. Figures are drawn for a paper: one panel is a column wide (:data:`COLUMN`), several
panels the page (:data:`PAGE`), with 7–8 pt text (:data:`STYLE`), so that they stay readable where they
end up."""
from __future__ import annotations

import functools
import re
from pathlib import Path

import click

from netarchive.cli import cli
from netarchive.errors import InputError

COLUMN, PAGE = 3.5, 7.2
"""Figure widths in inches: one column and the full page width of a two-column paper."""
STYLE = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 7, "legend.title_fontsize": 7, "figure.titlesize": 9, "figure.labelsize": 8,
    "axes.spines.top": False, "axes.spines.right": False, "lines.linewidth": 1.2, "lines.markersize": 4,
    "legend.frameon": False, "savefig.dpi": 300, "figure.constrained_layout.use": True,
}
"""matplotlib settings of every figure (text sizes at print size)."""
FIGURE_FORMATS = ("png", "pdf", "svg")


@cli.group()
def plot():
    """Draw an analysis as a figure (-o FILE.png, .pdf or .svg)."""


def new_figure(*args, **kwargs):
    """A matplotlib figure drawn off-screen (no display is needed) in :data:`STYLE`."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update(STYLE)
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(figure, output: str) -> None:
    """Write ``figure`` to ``output`` in the format of its suffix and say where it went."""
    import matplotlib.pyplot as plt

    figure.savefig(Path(output), format=figure_format(output))
    plt.close(figure)
    click.echo(f"wrote {output}")


def figure_format(output: str) -> str:
    """The format of a figure file from its suffix; another suffix is refused (before any work is done)."""
    suffix = Path(output).suffix.lower().lstrip(".")
    if suffix not in FIGURE_FORMATS:
        raise InputError(f"cannot draw {output}: give a .png, .pdf or .svg file")
    return suffix


def output_file_option(command):
    """Add the required ``-o/--output`` figure file (suffix and directory checked before any work)."""
    from netarchive.cli.output import check_parent

    @functools.wraps(command)
    def checked(*args, output, **kwargs):
        figure_format(output)
        check_parent(output)
        return command(*args, output=output, **kwargs)

    return click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
                        help="Figure file to write: .png, .pdf or .svg.")(checked)


def layer_label(index: int, name: str) -> str:
    """A weight layer as a reader knows it: ``layer 1 (fc1)`` for ``fc1.weight``; ``layer 1`` when the name
    says nothing more (``0.weight`` of an ``nn.Sequential``). ``index`` counts from 0 (the first layer of
    synapses, from the inputs), the label from 1."""
    stem = re.sub(r"\.weight(_orig)?$", "", name)
    return f"layer {index + 1}" if re.fullmatch(r"[\d.]*", stem) else f"layer {index + 1} ({stem})"


def kept_axis(axis, label: str) -> None:
    """A log x axis of kept fractions, its ticks written as plain numbers (0.01, 0.1, 1)."""
    from matplotlib.ticker import FuncFormatter

    axis.set_xscale("log")
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_xlabel(label)


def remaining_axis(axis) -> None:
    """x: the weights remaining, in percent (100·(1 − sparsity)), on a log scale from dense at the left to
    sparse at the right, as the lottery-ticket literature draws it: each pruning level of a fixed rate is
    one step, where a sparsity axis squeezes the last ten levels into its last tenth."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    axis.set_xscale("log")
    if not axis.xaxis_inverted():
        axis.invert_xaxis()
    axis.xaxis.set_major_locator(FixedLocator([100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01]))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.set_xlabel("weights remaining (%)")


def remaining(sparsity):
    """Percent of the dense weights remaining, the x of :func:`remaining_axis`."""
    return 100 * (1 - sparsity)


def colour_by_sparsity(figure, axes, checkpoints):
    """One colour per checkpoint from its sparsity, and the colour bar that says so (when there are
    several); returns the colours."""
    import matplotlib
    import numpy as np

    sparsities = np.array([c.sparsity for c in checkpoints])
    if len(checkpoints) == 1:
        return ["C0"]
    norm = matplotlib.colors.Normalize(sparsities.min(), max(sparsities.max(), sparsities.min() + 1e-9))
    cmap = matplotlib.colormaps["viridis"]
    figure.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, label="sparsity (fraction pruned)")
    return [cmap(norm(s)) for s in sparsities]
