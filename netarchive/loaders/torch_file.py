"""PyTorch checkpoints (``.pt``, ``.pth``): a state_dict, or a dict wrapping one under ``state_dict``,
``model`` or ``model_state_dict``. Loaded with ``weights_only=True``: a checkpoint is untrusted input."""
from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from netarchive.errors import InputError

SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


def read(path: Path) -> dict[str, np.ndarray]:
    """The named tensors of the checkpoint at ``path`` as numpy arrays, in state_dict order."""
    return arrays(_unwrap(safe_load(path), path), path)


def safe_load(path: Path):
    """``torch.load`` with ``weights_only=True``, its failures turned into one-line InputErrors."""
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if unsafe:
            raise InputError(
                f"{path} holds Python objects ({unsafe.group(1)}) that a safe load refuses; save model.state_dict() instead"
            ) from None
        raise InputError(f"{path} is not a readable PyTorch checkpoint (corrupt or not written by torch.save)") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise InputError(f"{path} is not a readable PyTorch checkpoint ({str(error).strip().splitlines()[0][:120]})") from None
    return loaded


def _unwrap(loaded, path: Path) -> Mapping:
    if not isinstance(loaded, Mapping):
        raise InputError(f"{path} holds a {type(loaded).__name__}, not a state_dict (a dict of named tensors)")
    for key in WRAPPER_KEYS:
        if isinstance(loaded.get(key), Mapping):
            return loaded[key]
    return loaded


def arrays(state: Mapping, origin) -> dict[str, np.ndarray]:
    """The tensors of a state_dict as float32 (or integer) numpy arrays, in order; ``origin`` names it in errors."""
    import torch

    found = {}
    for name, value in state.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            found[str(name)] = (value.float() if value.is_floating_point() else value).numpy()
    if not found:
        raise InputError(f"{origin} contains no tensors")
    return found
