"""From named tensors to the layer stack of a Checkpoint: masks applied, layers chosen and chained.

Where the mask of a weight can live, all handled here once for every file format:

- ``X.weight_orig`` with the buffer ``X.weight_mask`` (``torch.nn.utils.prune`` before ``prune.remove``);
- a dense ``X.weight`` beside a ``X.weight_mask`` buffer (the pruned entries are often not zero);
- a separate mask file with the same keys (``X.weight``, ``X.weight_mask`` or ``X``), 0/1;
- no mask at all: a zero weight is a pruned synapse.

A synapse survives where its effective weight (weight where the mask is 1, else 0) is non-zero.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from netarchive.errors import InputError
from netarchive.model import Layer


def effective_weights(tensors: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Weights with every mask applied, keyed ``X.weight``, in state_dict order."""
    weights: dict[str, np.ndarray] = {}
    for name, value in tensors.items():
        base = effective_name(name)
        if base is None:
            continue
        mask = tensors.get(base + "_mask")
        weights[base] = _apply(value, mask, base) if mask is not None else value
    for name, mask in (masks or {}).items():
        base = _mask_target(name, weights)
        weights[base] = _apply(weights[base], mask, base)
    return weights


def effective_name(name: str) -> str | None:
    """The name a tensor of a state_dict has once masks are applied (``X.weight_orig`` -> ``X.weight``);
    None for a mask buffer."""
    return None if name.endswith("_mask") else name.removesuffix("_orig")


def _mask_target(name: str, weights: Mapping) -> str:
    for candidate in (name, name.removesuffix("_mask"), name + ".weight"):
        if candidate in weights:
            return candidate
    raise InputError(f"the mask {name!r} matches no weight of the checkpoint (weights: {', '.join(weights)})")


def _apply(weight: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
    if mask.shape != weight.shape:
        raise InputError(f"the mask of {name} has shape {tuple(mask.shape)} but the weight has {tuple(weight.shape)}")
    if not np.isin(mask, (0, 1)).all():  # e.g. a file of weights given as --mask
        raise InputError(f"the mask of {name} has values other than 0 and 1: is it a file of weights?")
    return np.where(mask != 0, weight, 0)


def _is_weight(name: str) -> bool:
    return name == "weight" or name.endswith(".weight") or name.endswith("_weight")


def layer_stack(weights: Mapping[str, np.ndarray], names: Sequence[str] | None, source: str) -> tuple[Layer, ...]:
    """The fully connected layers, in forward order: ``names`` if given, else every 2-D ``*weight`` in order.

    Refuses convolution kernels and batch norms (a chain cannot hold them: the architecture must come from
    ``--model``) and stacks whose shapes do not chain.
    """
    if names:
        chosen = [_find(name, weights, source) for name in names]
    else:
        chosen = [name for name, value in weights.items() if _is_weight(name) and value.ndim >= 2]
        if not chosen:
            chosen = [name for name, value in weights.items() if value.ndim == 2]
    if not chosen:
        raise InputError(f"{source}: no 2-D weight matrices found (tensors: {', '.join(list(weights)[:12])})")
    layers = []
    for name in chosen:
        value = weights[name]
        if value.ndim != 2:
            raise InputError(
                f"{source}: {name} has shape {tuple(value.shape)}, a convolution kernel: give the architecture with "
                "--model package.module:factory (or file.py:factory) and --input-shape C,H,W"
            )
        if not np.issubdtype(value.dtype, np.number):
            raise InputError(f"{source}: {name} is not numeric ({value.dtype})")
        if not np.isfinite(value).all():
            raise InputError(f"{source}: {name} contains NaN or inf weights")
        layers.append(Layer.from_dense(name, value, _bias(name, weights, source)))
    statistics = next((name for name in weights if name.endswith(("running_mean", "running_var"))), None)
    if statistics is not None and not names:
        raise InputError(f"{source}: {statistics} is a BatchNorm statistic: give the architecture with "
                         "--model package.module:factory (or file.py:factory)")
    for a, b in zip(layers, layers[1:]):
        if a.outputs != b.inputs:
            raise InputError(
                f"{source}: shapes do not chain: {a.name} {a.outputs}x{a.inputs} feeds {a.outputs} outputs "
                f"but {b.name} {b.outputs}x{b.inputs} takes {b.inputs} inputs (give --layers to choose or order them)"
            )
    return tuple(layers)


def _bias(weight_name: str, weights: Mapping[str, np.ndarray], source: str) -> np.ndarray | None:
    """The bias beside a weight (``X.weight`` -> ``X.bias``), or None when the layer has none."""
    name = weight_name.removesuffix("weight") + "bias"
    bias = weights.get(name) if weight_name.endswith("weight") else None
    if bias is not None and not np.isfinite(bias).all():
        raise InputError(f"{source}: {name} contains NaN or inf")
    return bias


def _find(name: str, weights: Mapping, source: str) -> str:
    for candidate in (name, name + ".weight"):
        if candidate in weights:
            return candidate
    raise InputError(f"{source}: no weight named {name!r} (weights: {', '.join(weights)})")
