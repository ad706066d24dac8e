"""Forward passes of archived networks on their surviving synapses: accuracy, loss or MSE on a dataset.

A layer is applied as a sparse matrix when few of its weights survive and as a dense one otherwise
(above :data:`DENSE_ABOVE` density a dense matmul is faster than a sparse one on a CPU); either way only
the surviving synapses (or the subset ``keep`` of them) carry signal. The activation of the run is applied
between hidden layers, none after the output layer; a layer without stored biases uses zeros.

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


def _activation(name: str):
    import torch

    return {
        "relu": torch.relu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "gelu": torch.nn.functional.gelu,
        "identity": lambda h: h,
    }[name]


def layer_operator(layer: Layer, keep: np.ndarray | None = None):
    """The ``[outputs, inputs]`` weight matrix of ``layer`` (only the synapses where ``keep`` is true) as a
    torch tensor, dense or sparse (CSR: torch's COO product is ~10x slower, bench/robustness.md) by density."""
    import torch

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
    if x.ndim != 2 or x.shape[1] != checkpoint.widths[0]:
        raise InputError(
            f"the dataset has {x.shape[-1] if x.ndim else 0} features per sample but the network of "
            f"{checkpoint.run!r} has {checkpoint.widths[0]} inputs"
        )


def forward(checkpoint: Checkpoint, x: np.ndarray, keep: Sequence[np.ndarray | None] | None = None) -> np.ndarray:
    """The outputs (logits) of the network for the rows of ``x``; ``keep[l]`` optionally selects the
    synapses of layer ``l`` that take part (a boolean mask over its edges)."""
    check_inputs(checkpoint, x)
    keep = keep or [None] * len(checkpoint.layers)
    return apply(checkpoint, [layer_operator(layer, k) for layer, k in zip(checkpoint.layers, keep)], x)


def apply(checkpoint: Checkpoint, operators: Sequence, x: np.ndarray) -> np.ndarray:
    """The outputs for the rows of ``x`` of the network whose layers are the given ``[outputs, inputs]``
    operators (torch tensors, dense or sparse, as :func:`layer_operator` makes them), with the biases and
    the activation of ``checkpoint``."""
    import torch

    biases = [torch.tensor(layer.bias) if layer.bias is not None else None for layer in checkpoint.layers]
    activation = _activation(checkpoint.activation)
    outputs = []
    with torch.no_grad():
        for start in range(0, len(x), BATCH):
            h = torch.from_numpy(np.ascontiguousarray(x[start : start + BATCH], dtype=np.float32))
            for l, (operator, bias) in enumerate(zip(operators, biases)):
                h = h @ operator.T if operator.layout == torch.strided else (operator @ h.T).T
                if bias is not None:
                    h = h + bias
                if l < len(operators) - 1:
                    h = activation(h)
            outputs.append(h.numpy())
    return np.concatenate(outputs)


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
