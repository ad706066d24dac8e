"""Locality of pruned masks: ``query locality|displacements|pixels|translations``, ``plot locality`` and
``set-input-shape`` (see docs/locality.md)."""
from __future__ import annotations

import click
import numpy as np
import pandas as pd

from netarchive.analysis import locality as loc
from netarchive.cli import cli
from netarchive.cli.common import checkpoint_options, each_checkpoint, open_archive, parse_input_shape
from netarchive.cli.output import emit, output_options
from netarchive.cli.plot import PAGE, layer_label, new_figure, output_file_option, plot, save_figure
from netarchive.cli.query import query
from netarchive.errors import InputError


def _layer_option(help_text="Weight layer whose units are measured: its index (0 = first) or tensor name "
                             "(default: every Linear layer that reads pixels)."):
    return click.option("--layer", default=None, help=help_text)


_null_option = click.option(
    "--null", "null", type=click.Choice(["reached", "all"]), default="reached", show_default=True,
    help="Random placement among the channels the unit reaches, or among all input channels.",
)


def _per_checkpoint(run, level, compute) -> pd.DataFrame:
    with open_archive() as archive:
        frames = [compute(checkpoint) for checkpoint in each_checkpoint(archive, run, level)]
    return pd.concat(frames, ignore_index=True)


def _layers(layer):
    return None if layer is None else [layer]


@query.command("locality")
@checkpoint_options
@_layer_option()
@click.option("--summary", is_flag=True, help="One row per layer instead of one per unit.")
@click.option("--top", type=float, default=0.1, show_default=True, help="With --summary: fraction of most-connected units for locality_top.")
@_null_option
@output_options
def locality_command(run, level, layer, summary, top, null, fmt, output):
    """How local each unit's receptive field is: in-degree, centroid, spread, pair distances, locality.

    locality = expected / observed mean pair distance (> 1: more local than random pixels).
    """
    def compute(checkpoint):
        units = loc.unit_locality(checkpoint, _layers(layer), within_channels=null == "reached")
        return loc.locality_summary(units, top) if summary else units

    emit(_per_checkpoint(run, level, compute), fmt, output)


@query.command("displacements")
@checkpoint_options
@_layer_option()
@click.option("--degree-bins", help="Sum units per in-degree bin: increasing edges, e.g. 2,10,100.")
@click.option("--nonzero", is_flag=True, help="Leave out displacements with neither counts nor expectation.")
@_null_option
@output_options
def displacements_command(run, level, layer, degree_bins, nonzero, null, fmt, output):
    """Displacement histograms (dx, dy) of pixel pairs within units, same- and cross-channel, with the
    exact count expected for random receptive fields of the same sizes."""
    bins = _integers(degree_bins, "--degree-bins") if degree_bins else None
    frame = _per_checkpoint(run, level, lambda c: loc.displacements(c, _layers(layer), bins, within_channels=null == "reached"))
    if nonzero:
        frame = frame[(frame["count"] != 0) | (frame["expected"] != 0)].reset_index(drop=True)
    emit(frame, fmt, output)


@query.command("pixels")
@checkpoint_options
@_layer_option("Weight layer whose units' reach is counted: index or tensor name (default: the first that reads pixels).")
@output_options
def pixels_command(run, level, layer, fmt, output):
    """Out-degree of every pixel and channel: how many units of the layer still read it."""
    emit(_per_checkpoint(run, level, lambda c: loc.pixel_out_degree(c, _layers(layer))), fmt, output)


@query.command("translations")
@checkpoint_options
@_layer_option("Weight layer: index or tensor name (default: the first that reads pixels).")
@click.option("--min-degree", type=int, default=2, show_default=True, help="Leave out units reaching fewer inputs.")
@click.option("--min-size", type=int, default=2, show_default=True, help="Report groups of at least this many units.")
@click.option("--threshold", type=float, default=1.0, show_default=True,
              help="Link units whose best-shift normalised overlap reaches this (1 = exactly the same shape; "
                   "below 1 compares every pair of units: slower).")
@output_options
def translations_command(run, level, layer, min_degree, min_size, threshold, fmt, output):
    """Groups of units whose masks are one shape at different places (equal, or similar, up to a shift);
    column pattern numbers the groups from the largest."""
    def compute(checkpoint):
        return loc.translation_groups(checkpoint, _layers(layer), min_degree, min_size, threshold)

    emit(_per_checkpoint(run, level, compute), fmt, output)


@cli.command("set-input-shape")
@click.argument("shape", metavar="C,H,W")
@click.option("--run", required=True, help="The archived run.")
@click.option("--level", type=int, default=None, help="Only this level (default: every level of the run).")
def set_input_shape(shape, run, level):
    """Declare the inputs of an archived run as C,H,W pixels (flattened row-major), for locality analyses."""
    try:
        parsed = parse_input_shape(shape)
    except InputError:
        raise InputError(f"shape {shape!r} must be C,H,W, e.g. 1,28,28 or 3,32,32") from None
    with open_archive(read_only=False) as archive:
        archive.set_input_shape(run, parsed, level)
    click.echo(f"run {run!r}: input shape {','.join(map(str, parsed))}")


def _integers(text: str, option: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise InputError(f"{option} {text!r} must be comma-separated integers, e.g. 2,10,100") from None


# -- plot -------------------------------------------------------------------------------------------
@plot.command("locality")
@click.option("--run", required=True, help="Name of the archived run.")
@click.option("--level", type=int, default=None, help="Level to draw (default: the most pruned, i.e. the last).")
@_layer_option("Weight layer: index or tensor name (default: the first that reads pixels).")
@click.option("--units", "count", type=int, default=16, show_default=True, help="How many of the most-connected units to draw.")
@_null_option
@output_file_option
def plot_locality(run, level, layer, count, null, output):
    """Masks and weighted masks of the most-connected units, displacement heat maps beside their random
    expectation, and the pixel out-degree map."""
    if count < 1:
        raise InputError("--units must be at least 1")
    with open_archive() as archive:
        level = archive.levels(run)[-1] if level is None else level
        checkpoint = archive.checkpoint(run, level)
    [layer] = loc.check_layers(checkpoint, _layers(layer), every=False)  # the clear error before any work
    units = loc.unit_locality(checkpoint, [layer], within_channels=null == "reached")
    top = units.sort_values(["in_degree", "index"], ascending=[False, True]).head(count)
    top = top[top.in_degree > 0]
    hist = loc.displacements(checkpoint, [layer], within_channels=null == "reached")
    pixels = loc.pixel_out_degree(checkpoint, [layer])
    _draw(checkpoint, layer, top, hist, pixels, output)


def _draw(checkpoint, layer, top, hist, pixels, output):
    """Top: the receptive fields of the units, |w| on one colour scale (grey: no synapse); bottom: the
    displacement histograms beside their random expectation (one scale per pair) and the pixel out-degree."""
    import matplotlib

    grid = loc.pixels(checkpoint, layer)
    channels, height, width = grid.shape
    label = layer_label(checkpoint.layers[layer], layer)
    shown = top["index"].to_numpy()
    columns = max(1, min(8, len(shown)))
    rows = max(1, -(-len(shown) // columns))
    panels = [("same-channel pairs", True)] + ([("cross-channel pairs", False)] if channels > 1 else [])
    figure, _ = new_figure(figsize=(PAGE, 1.0 * rows + 3.3))
    figure.clear()
    units_part, maps_part = figure.subfigures(2, 1, height_ratios=[1.0 * rows + 0.5, 2.6])
    images = loc.unit_images(checkpoint, layer, shown, weighted=True) if len(shown) else np.zeros((0, channels, height, width))
    strength = "|w|" if len(grid.path) == 1 else "Σ over paths of Π|w|"  # read through Linear layers
    unit_axes = units_part.subplots(rows, columns, squeeze=False)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.85")
    norm = matplotlib.colors.Normalize(0, max(float(images.max(initial=0)), 1e-12))
    for i, axes in enumerate(unit_axes.flat):
        axes.axis("off")  # the grey field is the frame
        if i >= len(shown):
            axes.set_visible(False)
            continue
        row = top.iloc[i]
        if channels == 3:  # colour is the input channel: RGB of each channel's strength
            axes.imshow(np.clip(images[i].transpose(1, 2, 0) / norm.vmax, 0, 1), interpolation="nearest")
        else:
            summed = images[i].sum(axis=0)
            axes.imshow(np.ma.masked_equal(summed, 0), cmap=cmap, norm=norm, interpolation="nearest")
        locality = f" L {row.locality:.2f}" if np.isfinite(row.locality) else ""
        axes.set_title(f"#{shown[i]} k {row.in_degree}{locality}", fontsize=6, pad=2)
    if channels != 3 and len(shown):
        units_part.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=unit_axes, shrink=0.9,
                            label=f"{strength} (grey: none)")
    colour_note = "; colour: R, G, B = |w| of each input channel" if channels == 3 else ""
    units_part.suptitle(f"The {len(shown)} most-connected units of {label}: unit #, in-degree k, locality L"
                        f"{colour_note}", fontsize=8)
    map_axes = maps_part.subplots(1, 2 * len(panels) + 1)
    extent = (-(width - 0.5), width - 0.5, height - 0.5, -(height - 0.5))
    for k, (title, same) in enumerate(panels):
        part = hist[hist.same_channel == same]
        grids = [part.pivot(index="dy", columns="dx", values=value).to_numpy(dtype=float) for value in ("count", "expected")]
        scale = matplotlib.colors.Normalize(0, max(1.0, max(g.max() for g in grids)))
        pair = map_axes[2 * k: 2 * k + 2]
        for axes, name, values in zip(pair, ("observed", "random expectation"), grids):
            axes.imshow(values, cmap="magma", norm=scale, origin="upper", extent=extent)
            axes.set_title(f"{title}:\n{name}", fontsize=7)
            axes.set_xlabel("dx (pixels)")
            axes.set_ylabel("dy (pixels)") if axes is map_axes[0] else axes.set_yticklabels([])
        maps_part.colorbar(matplotlib.cm.ScalarMappable(norm=scale, cmap="magma"), ax=list(pair), shrink=0.85,
                           label="pixel pairs in a unit")
    axes = map_axes[-1]
    degree = pixels.out_degree.to_numpy().reshape(channels, height, width).sum(axis=0)
    image = axes.imshow(degree, cmap="cividis", interpolation="nearest")
    axes.set_title("pixel out-degree" + (f"\n(sum of {channels} channels)" if channels > 1 else ""), fontsize=7)
    axes.set_xticks([])
    axes.set_yticks([])
    maps_part.colorbar(image, ax=axes, shrink=0.85, label=f"units of {label} reading it")
    figure.suptitle(f"Locality of {checkpoint.run}, level {checkpoint.level} (sparsity {checkpoint.sparsity:.1%})")
    save_figure(figure, output)
