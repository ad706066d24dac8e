"""``.safetensors`` files of named weight matrices (read without torch, as numpy)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from netarchive.errors import InputError

SUFFIXES = (".safetensors",)


def read(path: Path) -> dict[str, np.ndarray]:
    """The named tensors of ``path`` as numpy arrays, in file order."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return dict(load_file(path))
    except (SafetensorError, ValueError, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise InputError(f"{path} is not a readable safetensors file ({str(error).strip()[:120]})") from None
