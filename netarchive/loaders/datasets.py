"""Datasets for forward passes: ``.npz`` with arrays ``x`` and ``y``, or a ``.pt`` file holding a dict
``{"x": tensor, "y": tensor}`` or a tuple ``(x, y)`` (loaded with ``weights_only=True``).

Images of any shape are flattened per sample, row-major as ``torch.flatten`` does; integer ``y`` means
classification (class indices), float ``y`` regression.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from netarchive.errors import InputError


def load_dataset(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: x as float32 ``[samples, features]``, y as int64 classes or float32 targets."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such dataset file: {path}")
    if path.suffix.lower() == ".npz":
        x, y = _from_npz(path)
    elif path.suffix.lower() in (".pt", ".pth"):
        x, y = _from_torch(path)
    else:
        raise InputError(f"{path}: a dataset must be .npz (arrays x, y) or .pt ({{'x': tensor, 'y': tensor}})")
    x = np.asarray(x)
    y = np.asarray(y)
    for name, values in (("x", x), ("y", y)):
        if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
            raise InputError(f"{path}: {name} must hold numbers, not {values.dtype}")
    if x.ndim < 2 or len(x) != len(y) or len(x) == 0:
        raise InputError(f"{path}: x must be [samples, features...] and y one value per sample (got {x.shape} and {y.shape})")
    x = x.reshape(len(x), -1).astype(np.float32)
    if not np.isfinite(x).all():
        raise InputError(f"{path}: x contains NaN or inf")
    y = y.reshape(len(y), -1) if y.ndim > 1 else y
    return x, (y.astype(np.int64) if np.issubdtype(y.dtype, np.integer) else y.astype(np.float32))


def _from_npz(path: Path):
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if "x" not in arrays or "y" not in arrays:
                raise InputError(f"{path}: expected arrays named x and y, found {', '.join(arrays.files)}")
            return arrays["x"], arrays["y"]
    except (ValueError, OSError) as error:
        raise InputError(f"{path} is not a readable .npz file ({str(error).strip()[:120]})") from None


def _from_torch(path: Path):
    import torch

    from netarchive.loaders.torch_file import safe_load

    loaded = safe_load(path)
    if isinstance(loaded, Mapping) and "x" in loaded and "y" in loaded:
        x, y = loaded["x"], loaded["y"]
    elif isinstance(loaded, (tuple, list)) and len(loaded) == 2:
        x, y = loaded
    else:
        raise InputError(f"{path}: expected {{'x': tensor, 'y': tensor}} or a tuple (x, y)")
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise InputError(f"{path}: x and y must be tensors")
    return x.float().numpy(), y.numpy()
