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


def layer_label(layer, index: int, shape: bool = False) -> str:
    """How every figure names weight layer ``index`` (its forward index from 0, the tables' ``layer``): by
    index and module, ``layer 1 (fc1)`` in titles, just ``layer 0`` when the tensor name says nothing more
    (``0.weight`` of an ``nn.Sequential``); with ``shape`` (legends listing many layers) by index, module
    and geometry, ``7 blocks.3.conv1 (conv 3×3, 16→32, stride 2)``, ``21 fc (linear 64→10)``."""
    module = re.sub(r"\.weight(_orig)?$", "", layer.name)
    named = not re.fullmatch(r"[\d.]*", module)
    if not shape:
        return f"layer {index} ({module})" if named else f"layer {index}"
    head = f"{index} {module}" if named else str(index)
    if layer.conv is None:
        return f"{head} (linear {layer.inputs}→{layer.outputs})"
    conv = layer.conv
    kernel = f"conv {conv.kernel[0]}×{conv.kernel[1]}" if conv.dims == 2 else f"conv1d {conv.kernel[1]}"
    stride = str(conv.stride[1]) if conv.dims == 1 or conv.stride[0] == conv.stride[1] else "×".join(map(str, conv.stride))
    extra = ([f", stride {stride}"] if max(conv.stride) > 1 else []) + ([f", groups {conv.groups}"] if conv.groups > 1 else [])
    return f"{head} ({kernel}, {layer.inputs}→{layer.outputs}{''.join(extra)})"


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
