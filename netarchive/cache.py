"""Analysis tables cached beside the archive, so that asking again about an unchanged checkpoint is instant.

A table is filed under the checkpoint's version token (``Store.versions``), which every write of the
checkpoint renews, and under :data:`TABLES_VERSION`, which every change of an analysis's table renews:
``--replace`` makes old entries unreachable at once, a newer netarchive never serves the columns of an
older one, and :meth:`AnalysisCache.prune` removes what is unreachable (after ``rm`` or ``--replace``).
Layout::

    CACHE/<version>/tables-<TABLES_VERSION>/<analysis>-<hash of its options>.parquet
    CACHE/sets/<hash of the checkpoints and their versions>/tables-<TABLES_VERSION>/<analysis>-<hash>.parquet

The second holds a table of many checkpoints at once (a study's summary): reading 2 000 one-row files
takes seconds, one file milliseconds. A set is served while none of its checkpoints changed (its hash
names their versions); the newest :data:`KEPT_SETS` are kept, and none after ``rm`` or ``--replace``.

Tables are Parquet (never pickle: the folder may be shared); a table Parquet cannot hold is simply not
cached.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from netarchive.store.base import Problem


TABLES_VERSION = 3
"""The version of the analysis tables: bump it with any change to an analysis's columns or to the meaning
or values of one (2: one notion of layer, ``layer`` = forward index and ``layer_name`` everywhere; 3: counts
are integers, the measured threshold and random curves average RANDOM_ORDERS = 10 orderings, the chain3
pairs and the study null of the motifs)."""


SETS = "sets"
"""The folder of tables of several checkpoints."""
KEPT_SETS = 16
"""How many sets of checkpoints keep their tables (the newest): a set of checkpoints since changed is
never asked for again, and only this bounds the folder."""


class AnalysisCache:
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def set_version(self, checkpoints: Iterable[tuple[str, int, str]]) -> str:
        """The folder name, for :meth:`lookup` and :meth:`store`, of the tables of the checkpoints
        ``(run, level, version)`` together, in that order."""
        listing = json.dumps([list(checkpoint) for checkpoint in checkpoints])
        return f"{SETS}/{hashlib.sha1(listing.encode()).hexdigest()[:16]}"

    def path(self, version: str, name: str, options: dict) -> Path:
        digest = hashlib.sha1(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return self.directory / version / _tables_folder() / f"{name}-{digest}.parquet"

    def get(self, version: str, name: str, options: dict, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """The cached table, or ``compute()`` stored for next time."""
        table = self.lookup(version, name, options)
        if table is None:
            table = compute()
            self.store(version, name, options, table)
        return table

    def lookup(self, version: str, name: str, options: dict) -> pd.DataFrame | None:
        path = self.path(version, name, options)
        if not path.exists():
            return None
        try:
            return pq.ParquetFile(path).read().to_pandas()  # about 3x quicker than pandas.read_parquet
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # damaged: compute again
            return None

    def store(self, version: str, name: str, options: dict, table: pd.DataFrame) -> None:
        path = self.path(version, name, options)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
                temporary = Path(handle.name)
            table.to_parquet(temporary, index=False)
            os.replace(temporary, path)  # readers never see a half-written file
            if version.startswith(f"{SETS}/"):
                self._trim_sets()
        except (OSError, ValueError, TypeError, ImportError):
            pass
        finally:
            if "temporary" in locals() and temporary.exists():
                temporary.unlink()

    def _trim_sets(self) -> None:
        folders = sorted((f for f in (self.directory / SETS).iterdir() if f.is_dir()), key=_modified, reverse=True)
        for folder in folders[KEPT_SETS:]:
            shutil.rmtree(folder, ignore_errors=True)

    def _folders(self, live: set[str]) -> list[tuple[Path, bool]]:
        """Every folder of tables, and whether it is served: a checkpoint's while its version is live, a
        set's always (its name is unreachable once one of its checkpoints changes; trimmed by age)."""
        folders = []
        for folder in self.directory.iterdir():
            if folder.is_dir() and folder.name == SETS:
                folders += [(entry, True) for entry in folder.iterdir() if entry.is_dir()]
            elif folder.is_dir():
                folders.append((folder, folder.name in live))
        return folders

    def problems(self, live: Iterable[str]) -> list[Problem]:
        """Tables no netarchive of this version serves (of checkpoints no longer archived, or of other
        tables versions), and tables that cannot be read (``check``)."""
        if not self.directory.is_dir():
            return []
        folders = self._folders(set(live))
        stale = [folder for folder, served in folders if not served]
        stale += [entry for folder, served in folders if served for entry in folder.iterdir() if entry.name != _tables_folder()]
        problems = []
        if stale:
            problems.append(Problem(
                "stale-cache", f"{len(stale)} folder(s) of cached analyses no longer served (checkpoints no longer "
                f"archived, or older tables versions) in {self.directory}", "delete them", lambda: self.prune(live),
            ))
        for folder in sorted(folder for folder, served in folders if served):
            for path in sorted(entry for entry in (folder / _tables_folder()).glob("*") if entry.is_file()):
                try:
                    pq.read_metadata(path)
                except (OSError, ValueError):
                    problems.append(Problem(
                        "damaged-cache", f"{path} is not a readable table", "delete it (it is computed again when asked)",
                        lambda path=path: path.unlink(missing_ok=True),
                    ))
        return problems

    def prune(self, live: Iterable[str]) -> None:
        """Remove the cached tables of every version not in ``live``, and those of other tables versions;
        and every set's (after ``rm`` or ``--replace``, sets may name checkpoints that are gone: a set is
        read again from its checkpoints' own tables)."""
        if not self.directory.is_dir():
            return
        shutil.rmtree(self.directory / SETS, ignore_errors=True)
        for folder, served in self._folders(set(live)):
            stale = [folder] if not served else [p for p in folder.iterdir() if p.name != _tables_folder()]
            for path in stale:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)  # a table an older netarchive filed without a tables version


def _tables_folder() -> str:
    return f"tables-{TABLES_VERSION}"


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
