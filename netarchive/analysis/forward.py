"""Forward passes of archived networks on their surviving synapses: accuracy, loss or MSE on a dataset.

The checkpoint's program (:mod:`netarchive.model.program`) is executed op by op from the archived arrays:
a Linear layer is applied as a sparse matrix when few of its weights survive and as a dense one otherwise
(above :data:`DENSE_ABOVE` density a dense matmul is faster than a sparse one on a CPU), a convolution by
rebuilding its pruned kernel for ``torch.nn.functional.conv2d`` (1-D ones as height-1 2-D ones, which
computes the same); batch norms use their running statistics, pools, activations, flattens, additions and
concatenations are torch's own, dropout does nothing (eval mode). Either way only the surviving synapses
(or the subset ``keep`` of them) carry signal; a layer without stored biases uses zeros. A plain chain's
program applies the run's activation between hidden layers and none after the output layer.

Example::

    >>> import numpy as np
    >>> from netarchive.model import Checkpoint, Layer
    >>> net = Checkpoint("r", 0, (Layer.from_dense("fc", np.array([[1.0, -1.0], [0.0, 2.0]])),))
    >>> forward(net, np.array([[1.0, 1.0]], dtype=np.float32)).tolist()
    [[0.0, 2.0]]
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from netarchive.errors import InputError
from netarchive.model import Checkpoint, Layer

DENSE_ABOVE = 0.1
"""Density of a layer above which its matrix is applied dense (CSR and dense products cost the same near
0.15 on a 1024x3072 layer, 1000 samples, 2 cores; bench/robustness.md)."""
BATCH = 8192
VALUE_BUDGET = 1 << 24
"""Numbers that one value of a batch may hold (64 MB): convolutional networks run in smaller batches."""


def _activation(op):
    import torch
    import torch.nn.functional as F

    function = op.params["function"]
    if function == "leaky_relu":
        slope = op.params.get("slope", 0.01)
        return lambda h: F.leaky_relu(h, slope)
    if function == "gelu":
        approximate = op.params.get("approximate", "none")
        return lambda h: F.gelu(h, approximate=approximate)
    return {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda h: h}[function]


def layer_operator(layer: Layer, keep: np.ndarray | None = None):
    """The weights of ``layer`` (only the synapses where ``keep`` is true) as a torch tensor: for a Linear
    layer the ``[outputs, inputs]`` matrix, dense or sparse (CSR: torch's COO product is ~10x slower,
    bench/robustness.md) by density; for a convolution its dense ``[C_out, C_in / groups, kh, kw]`` kernel."""
    import torch

    if layer.conv is not None:
        kept = layer if keep is None else layer.subset(keep)
        return torch.from_numpy(kept.dense().reshape(layer.outputs, layer.inputs // layer.conv.groups, *layer.conv.kernel))
    src, dst, w = (layer.src, layer.dst, layer.w) if keep is None else (layer.src[keep], layer.dst[keep], layer.w[keep])
    if len(w) > DENSE_ABOVE * layer.dense_size:
        matrix = torch.zeros(layer.outputs, layer.inputs)
        matrix[torch.tensor(dst, dtype=torch.long), torch.tensor(src, dtype=torch.long)] = torch.tensor(w)
        return matrix
    matrix = sp.csr_matrix((w, (dst, src)), shape=(layer.outputs, layer.inputs), dtype=np.float32)
    matrix.sum_duplicates()
    with warnings.catch_warnings():  # "sparse CSR tensor support is in beta": we only multiply with it
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np.int64)), torch.from_numpy(matrix.indices.astype(np.int64)),
            torch.from_numpy(matrix.data), size=matrix.shape,
        )


def check_inputs(checkpoint: Checkpoint, x: np.ndarray) -> None:
    if x.ndim != 2 or x.shape[1] != checkpoint.input_features:
        shape = f" ({','.join(map(str, checkpoint.input_shape))})" if checkpoint.groups[0].is_feature_map else ""
        raise InputError(
            f"the dataset has {x.shape[-1] if x.ndim else 0} features per sample but the network of "
            f"{checkpoint.run!r} has {checkpoint.input_features} inputs{shape}"
        )


def forward(checkpoint: Checkpoint, x: np.ndarray, keep: Sequence[np.ndarray | None] | None = None) -> np.ndarray:
    """The outputs (logits) of the network for the rows of ``x``; ``keep[l]`` optionally selects the
    synapses of layer ``l`` that take part (a boolean mask over its edges)."""
    check_inputs(checkpoint, x)
    keep = keep or [None] * len(checkpoint.layers)
    return apply(checkpoint, [layer_operator(layer, k) for layer, k in zip(checkpoint.layers, keep)], x)


def apply(checkpoint: Checkpoint, operators: Sequence, x: np.ndarray) -> np.ndarray:
    """The outputs for the rows of ``x`` of the network whose layers are the given operators (torch tensors
    as :func:`layer_operator` makes them), with the biases, batch norms and program of ``checkpoint``."""
    import torch

    program = checkpoint.program
    last_use = {i: position for position, op in enumerate(program) for i in op.inputs}
    steps = [_step(checkpoint, op, operators) for op in program]
    largest = max(size * (spatial[0] * spatial[1] if spatial else 1) for size, spatial in checkpoint.value_shapes())
    batch = int(np.clip(VALUE_BUDGET // largest, 1, BATCH))
    outputs = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            values = [steps[0](torch.from_numpy(np.ascontiguousarray(x[start : start + batch], dtype=np.float32)))]
            for position, (op, step) in enumerate(zip(program[1:], steps[1:]), 1):
                values.append(step(*(values[i] for i in op.inputs)))
                for i in op.inputs:
                    if last_use[i] == position:
                        values[i] = None
            outputs.append(values[-1].reshape(len(values[-1]), -1).numpy())
    return np.concatenate(outputs)


def _step(checkpoint: Checkpoint, op, operators):
    """The torch function of one op of the program, its weights bound."""
    import torch
    import torch.nn.functional as F

    p = op.params
    if op.kind == "input":
        first = checkpoint.groups[0]
        return (lambda h: h.reshape(len(h), first.size, *first.spatial)) if first.is_feature_map else (lambda h: h)
    if op.kind == "layer":
        layer, weight = checkpoint.layers[op.index], operators[op.index]
        bias = torch.from_numpy(layer.bias) if layer.bias is not None else None
        if layer.conv is not None:
            c = layer.conv
            return lambda h: F.conv2d(h, weight, bias, c.stride, c.padding, c.dilation, c.groups)
        def linear(h):
            h = h @ weight.T if weight.layout == torch.strided else (weight @ h.T).T
            return h + bias if bias is not None else h
        return linear
    if op.kind == "batchnorm":
        norm = checkpoint.batchnorms[op.index]
        stats = [None if a is None else torch.from_numpy(a) for a in (norm.running_mean, norm.running_var, norm.weight, norm.bias)]
        return lambda h: F.batch_norm(h, *stats, training=False, eps=norm.eps)
    if op.kind == "activation":
        return _activation(op)
    if op.kind == "maxpool":
        return lambda h: F.max_pool2d(h, p["kernel"], p["stride"], p["padding"], p["dilation"], p["ceil_mode"])
    if op.kind == "avgpool":
        return lambda h: F.avg_pool2d(h, p["kernel"], p["stride"], p["padding"], p["ceil_mode"], p["count_include_pad"],
                                      p["divisor_override"])
    if op.kind == "adaptive_maxpool":
        return lambda h: F.adaptive_max_pool2d(h, p["output_size"])
    if op.kind == "adaptive_avgpool":
        return lambda h: F.adaptive_avg_pool2d(h, p["output_size"])
    if op.kind == "flatten":
        return lambda h: h.reshape(len(h), -1)
    if op.kind == "add":
        return lambda *values: sum(values[1:], values[0])
    return lambda *values: torch.cat(values, 1)


def scores(outputs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """``accuracy`` and mean cross-entropy ``loss`` for class labels, ``mse`` for float targets."""
    if np.issubdtype(y.dtype, np.integer):
        if y.ndim != 1 or y.min() < 0 or y.max() >= outputs.shape[1]:
            raise InputError(f"class labels must be integers from 0 to {outputs.shape[1] - 1}, one per sample")
        shifted = outputs - outputs.max(axis=1, keepdims=True)
        log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return {
            "accuracy": float((outputs.argmax(axis=1) == y).mean()),
            "loss": float(-log_probabilities[np.arange(len(y)), y].mean()),
        }
    target = y.reshape(len(y), -1)
    if target.shape[1] != outputs.shape[1]:
        raise InputError(f"regression targets have {target.shape[1]} values per sample but the network has {outputs.shape[1]} outputs")
    return {"mse": float(((outputs - target) ** 2).mean())}


def evaluate(checkpoints: Sequence[Checkpoint], x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """One row per checkpoint: run, level, sparsity, samples, the scores, and whether biases were stored
    (``biases`` is ``"none: zeros used"`` for a checkpoint archived without them)."""
    rows = []
    for checkpoint in checkpoints:
        has_bias = any(layer.bias is not None for layer in checkpoint.layers)
        rows.append(
            {
                "run": checkpoint.run,
                "level": checkpoint.level,
                "sparsity": checkpoint.sparsity,
                "samples": len(x),
                **scores(forward(checkpoint, x), y),
                "biases": "stored" if has_bias else "none: zeros used",
            }
        )
    return pd.DataFrame(rows)
