"""A checkpoint as flat columns (one row per neuron, per synapse, per weightless edge) and back.

What the stores keep and the Parquet export writes: the architecture (:meth:`Checkpoint.architecture`, a
JSON string), the neurons with their group, index, pixel coordinates, bias and batch-norm statistics, every
kernel weight as one synapse with its weight layer and kernel offset, and the edges of the add, concat and
flatten connections. :func:`assemble` rebuilds the checkpoint from them, so every backend and the export
loader read through one function. Columns are numpy arrays; absent values are ``-1`` (integer columns:
coordinates, and the kernel offsets of Linear synapses) or NaN (float columns), which each writer turns
into nulls.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from netarchive.errors import DamagedArchive, InputError
from netarchive.model.graph import Checkpoint
from netarchive.model.layer import Layer
from netarchive.model.program import chain_program

COORDINATES = ("channel", "y", "x")
BATCHNORM_COLUMNS = {"bn_weight": "weight", "bn_bias": "bias", "bn_mean": "running_mean", "bn_var": "running_var"}
"""Neuron column -> BatchNorm field: the statistics of the neurons of a normalised group (eps is in the
architecture)."""
NEURON_VALUES = ("bias", *BATCHNORM_COLUMNS)
"""The float columns of a neuron that the forward pass needs."""
NEURON_COLUMNS = ("group", "index", *COORDINATES, *NEURON_VALUES)
SYNAPSE_COLUMNS = ("src", "dst", "w", "layer", "ky", "kx")


def architecture_json(checkpoint: Checkpoint) -> str:
    """The architecture as the one JSON string a Checkpoint node (or the export's listing) keeps."""
    return json.dumps(checkpoint.architecture(), separators=(",", ":"))


def neuron_columns(checkpoint: Checkpoint) -> dict[str, np.ndarray]:
    """One row per neuron in global order: ``group``, ``index`` (within the group), ``channel``/``y``/``x``
    (-1 for units without pixel coordinates), ``bias`` and the batch-norm columns (NaN where absent)."""
    n, offsets = checkpoint.neurons, checkpoint.offsets
    group = checkpoint.neuron_groups()
    columns = {"group": group.astype(np.int64), "index": (np.arange(n) - offsets[group]).astype(np.int64)}
    for name in COORDINATES:
        columns[name] = np.full(n, -1, dtype=np.int64)
    for g in range(len(checkpoint.groups)):
        found = checkpoint.coordinates(g)
        if found is not None:
            for name, values in zip(COORDINATES, found):
                columns[name][offsets[g] : offsets[g + 1]] = values
    for name in NEURON_VALUES:
        columns[name] = np.full(n, np.nan)
    for layer in checkpoint.layers:
        if layer.bias is not None:
            columns["bias"][offsets[layer.target] : offsets[layer.target + 1]] = layer.bias
    for norm in checkpoint.batchnorms:
        for name, field in BATCHNORM_COLUMNS.items():
            values = getattr(norm, field)
            if values is not None:
                columns[name][offsets[norm.group] : offsets[norm.group + 1]] = values
    return columns


def synapse_columns(checkpoint: Checkpoint) -> dict[str, np.ndarray]:
    """One row per synapse (kernel weight): global ``src``/``dst``, ``w``, ``layer`` (forward index),
    ``ky``/``kx`` (the kernel offset; -1 for Linear layers)."""
    src, dst, w, layer = checkpoint.edge_list()
    ky, kx = checkpoint.kernel_offsets()
    return {"src": src, "dst": dst, "w": w, "layer": layer.astype(np.int16), "ky": ky, "kx": kx}


def connection_columns(checkpoint: Checkpoint) -> dict[str, np.ndarray]:
    """One row per weightless edge: global ``src``/``dst`` and ``kind`` (add, concat, flatten)."""
    src, dst, which = checkpoint.connection_edges()
    kinds = np.array([connection.kind for connection in checkpoint.connections] or [""], dtype=object)
    return {"src": src, "dst": dst, "kind": kinds[which] if len(which) else np.zeros(0, dtype=object)}


def layer_groups(architecture: Mapping | None, layers: int) -> tuple[list[int], list[int]]:
    """The source and target group of each weight layer (a chain's l -> l + 1 without an architecture)."""
    if architecture is None:
        return list(range(layers)), list(range(1, layers + 1))
    return [spec["source"] for spec in architecture["layers"]], [spec["target"] for spec in architecture["layers"]]


def parse_architecture(text: str | None) -> dict | None:
    return None if text is None else json.loads(text)


def with_input_shape(text: str | None, shape) -> str | None:
    """An architecture JSON whose inputs are the pixels of ``shape`` (C, H, W): what ``set_input_shape``
    records (None stays None: an archive before architectures keeps the shape on its Checkpoint node only)."""
    architecture = parse_architecture(text)
    if architecture is None:
        return None
    architecture["input_shape"] = architecture["groups"][0]["coordinates"] = [int(s) for s in shape]
    return json.dumps(architecture, separators=(",", ":"))


def split_synapses(columns: Mapping[str, np.ndarray], widths: Sequence[int], sources: Sequence[int],
                   targets: Sequence[int], run: str, level: int) -> list[dict[str, np.ndarray]]:
    """Per weight layer, its synapses with ``src``/``dst`` within their groups, from global columns (as
    :func:`synapse_columns` gives them, any order). Raises DamagedArchive for a synapse outside its layer's
    groups."""
    offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
    layer = np.asarray(columns["layer"])
    if not np.issubdtype(layer.dtype, np.integer):
        layer = layer.astype(np.int64)
    if len(layer) and (layer.min() < 0 or layer.max() >= len(sources)):
        raise DamagedArchive.checkpoint(run, level, "synapses of a weight layer it does not have")
    bounds = np.zeros(len(sources) + 1, dtype=np.int64)
    if len(layer):
        bounds[1:] = np.cumsum(np.bincount(layer.astype(np.intp, copy=False), minlength=len(sources)))
    # Rows already in layer order (as a store often reads them back) are sliced, not gathered; otherwise a
    # stable sort (a radix sort for the stores' int16 layers) orders them.
    order = None if len(layer) < 2 or not (layer[1:] < layer[:-1]).any() else np.argsort(layer, kind="stable")
    names = ["w", *(axis for axis in ("ky", "kx") if axis in columns)]
    split = []
    for l, (source, target) in enumerate(zip(sources, targets)):
        rows = slice(bounds[l], bounds[l + 1]) if order is None else order[bounds[l] : bounds[l + 1]]
        src = np.asarray(columns["src"])[rows] - offsets[source]
        dst = np.asarray(columns["dst"])[rows] - offsets[target]
        if len(src) and (src.min() < 0 or src.max() >= widths[source] or dst.min() < 0 or dst.max() >= widths[target]):
            raise DamagedArchive.checkpoint(run, level, f"synapses of layer {l} join neurons that are not in its groups")
        part = {"src": src, "dst": dst}
        for name in names:
            part[name] = np.asarray(columns[name])[rows]
            if order is None:
                part[name] = part[name].copy()  # not a view of the whole column
        split.append(part)
    return split


def assemble(architecture: Mapping | None, synapses: Sequence[Mapping[str, np.ndarray]], neurons: Mapping[str, np.ndarray], *,
             run: str, level: int, widths: Sequence[int], layer_names: Sequence[str], input_shape=None,
             activation: str = "relu", architecture_source: str, metrics: Mapping | None = None,
             meta: Mapping | None = None, curves: Mapping | None = None) -> Checkpoint:
    """The checkpoint from what a store or an export holds: the architecture (None: an archive written
    before it was kept, read as the chain of its layers), each layer's synapses (:func:`split_synapses`) and
    the float neuron columns in global order (NaN where absent). ``activation`` is the run's: a plain
    chain's nonlinearity, which ``set_activation`` changes."""
    offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)

    def values(name: str, group: int) -> np.ndarray | None:
        found = neurons.get(name)
        if found is None:
            return None
        part = np.asarray(found, dtype=np.float64)[offsets[group] : offsets[group + 1]]
        return None if np.isnan(part).all() else np.nan_to_num(part)

    if architecture is None:
        layers = tuple(
            Layer(name, widths[l], widths[l + 1], part["src"], part["dst"], part["w"], values("bias", l + 1))
            for l, (name, part) in enumerate(zip(layer_names, synapses, strict=True))
        )
        return Checkpoint(run, int(level), layers, input_shape, dict(metrics or {}), dict(meta or {}), activation,
                          architecture_source=architecture_source, curves=dict(curves or {}))
    arrays = {
        "layers": [
            {"src": part["src"], "dst": part["dst"], "w": part["w"], "bias": values("bias", spec["target"]),
             **({"ky": part["ky"], "kx": part["kx"]} if spec.get("conv") else {})}
            for spec, part in zip(architecture["layers"], synapses, strict=True)
        ],
        "batchnorms": [
            {field: values(name, spec["group"]) for name, field in BATCHNORM_COLUMNS.items()}
            for spec in architecture["batchnorms"]
        ],
    }
    for spec, norm in zip(architecture["batchnorms"], arrays["batchnorms"]):
        if norm["running_mean"] is None or norm["running_var"] is None:
            raise DamagedArchive.checkpoint(run, level, f"the neurons of batch norm {spec['name']} have no running statistics")
    try:
        checkpoint = Checkpoint.from_architecture(architecture, arrays, run=run, level=int(level), metrics=metrics, meta=meta,
                                                  curves=curves)
    except InputError as error:
        raise DamagedArchive.checkpoint(run, level, str(error)) from None
    if checkpoint.is_sequential and checkpoint.activation != activation:  # a chain's is the run's (set_activation)
        checkpoint = replace(checkpoint, activation=activation, program=chain_program(len(checkpoint.layers), activation))
    return checkpoint
