"""``netarchive plot``: figures a user would rather look at than read, written as PNG files.

Analysis modules add their plot commands to the :data:`plot` group and save with :func:`save_figure`."""
from __future__ import annotations

import functools
from pathlib import Path

import click

from netarchive.cli import cli


@cli.group()
def plot():
    """Draw an analysis as a PNG figure (-o FILE.png)."""


def new_figure(*args, **kwargs):
    """A matplotlib figure drawn off-screen (no display is needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(figure, output: str) -> None:
    """Write ``figure`` to ``output`` (PNG) and say where it went."""
    import matplotlib.pyplot as plt

    figure.savefig(Path(output), dpi=120, bbox_inches="tight")
    plt.close(figure)
    click.echo(f"wrote {output}")


def output_file_option(command):
    """Add the required ``-o/--output`` PNG file (its directory must exist: checked before any work)."""
    from netarchive.cli.output import check_parent

    @functools.wraps(command)
    def checked(*args, output, **kwargs):
        check_parent(output)
        return command(*args, output=output, **kwargs)

    return click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")(checked)


def layer_label(layer, index: int, shape: bool = False) -> str:
    """How every figure names weight layer ``index``: by its forward index and module, ``layer 1 (fc1)``
    in titles; with ``shape`` (legends listing many layers) by index, module and geometry,
    ``7 blocks.3.conv1 (conv 3×3, 16→32, stride 2)``, ``21 fc (linear 64→10)``."""
    module = layer.name.removesuffix(".weight") or layer.name
    if not shape:
        return f"layer {index} ({module})"
    if layer.conv is None:
        return f"{index} {module} (linear {layer.inputs}→{layer.outputs})"
    conv = layer.conv
    kernel = f"conv {conv.kernel[0]}×{conv.kernel[1]}" if conv.dims == 2 else f"conv1d {conv.kernel[1]}"
    stride = str(conv.stride[1]) if conv.dims == 1 or conv.stride[0] == conv.stride[1] else "×".join(map(str, conv.stride))
    extra = ([f", stride {stride}"] if max(conv.stride) > 1 else []) + ([f", groups {conv.groups}"] if conv.groups > 1 else [])
    return f"{index} {module} ({kernel}, {layer.inputs}→{layer.outputs}{''.join(extra)})"
