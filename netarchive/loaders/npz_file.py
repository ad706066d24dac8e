"""``.npz`` archives of named weight matrices (``numpy.savez``); pickled objects are refused."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from netarchive.errors import InputError

SUFFIXES = (".npz",)


def read(path: Path) -> dict[str, np.ndarray]:
    """The named arrays of ``path``, in file order."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, zipfile.BadZipFile, EOFError, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise InputError(f"{path} is not a readable .npz file of arrays ({str(error).strip()[:120]})") from None
