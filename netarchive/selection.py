"""Choosing runs by name, glob pattern or label: the one resolver behind every ``--runs`` and ``--where``.

A pattern is a run name, an ``fnmatch`` glob (``seed*``, ``run0[0-4]``, ``lth-?-r1``), or the word ``all``
(every run; no pattern at all means the same). ``where`` gives labels (the run's meta, e.g. those of an
OpenLTH ``hparams.log``, and ``activation``) that must all hold; a value may be a glob too. Values are
compared as the strings they were stored as (``pruning_fraction=0.2``).

>>> import pandas as pd
>>> runs = pd.DataFrame({"run": ["base", "seed0", "seed1"], "dataset_name": ["mnist", "mnist", "cifar10"]})
>>> select(runs, ["seed*"], {}, "out/archive")
['seed0', 'seed1']
>>> select(runs, ["all"], {"dataset_name": "mnist"}, "out/archive")
['base', 'seed0']
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import pandas as pd

from netarchive.errors import InputError, NotFound, similar

ALL = "all"
_GLOB = re.compile(r"[*?\[]")
_SHOWN = 10
"""Run names listed in full when announcing a selection; beyond that, a count."""


def parse_patterns(*texts: str | None) -> list[str]:
    """The patterns of ``--run`` and ``--runs`` values (comma-separated), in order, once each."""
    patterns = []
    for text in texts:
        if text is None:
            continue
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts:
            raise InputError(f"--runs {text!r} names no run: give names or patterns, e.g. --runs 'seed*' or --runs all")
        patterns += parts
    return list(dict.fromkeys(patterns))


def parse_where(pairs: Iterable[str]) -> dict[str, str]:
    """``--where KEY=VALUE`` values to a dict (a key given twice is refused: both could never hold)."""
    where: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--where {pair!r} is not LABEL=VALUE (e.g. --where dataset_name=mnist)")
        if key in where:
            raise InputError(f"--where gives {key} twice ({where[key]!r} and {value!r}); a run has one value")
        where[key] = value
    return where


def select(
    runs: pd.DataFrame,
    patterns: Sequence[str] | None,
    where: Mapping[str, str] | None,
    location: str,
    announce: Callable[[str, list[str]], None] | None = None,
) -> list[str]:
    """The runs of the table ``runs`` (a ``run`` column and one column per label, as ``Store.runs``) that
    match any of ``patterns`` and every label of ``where``: in the order of the patterns, each glob's
    matches sorted, once each.

    An unknown name or a pattern that matches nothing raises NotFound naming similar runs; an unknown
    label InputError naming the labels; when globs, ``all`` or labels given chose more than one run,
    ``announce(what was asked, runs)`` is called (the CLI prints it on stderr).
    """
    names = sorted(runs["run"].astype(str))
    chosen: list[str] = []
    for pattern in patterns or [ALL]:
        if pattern == ALL:
            chosen += names
        elif _GLOB.search(pattern):
            matched = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
            if not matched:
                raise NotFound.pattern(pattern, location, names)
            chosen += matched
        elif pattern in names:
            chosen.append(pattern)
        else:
            raise NotFound.run(pattern, location, names)
    chosen = list(dict.fromkeys(chosen))
    for key, value in (where or {}).items():
        chosen = _having(runs, chosen, key, value)
    expanded = any(p == ALL or _GLOB.search(p) for p in patterns or ()) or bool(where)  # not the silent default
    if announce is not None and expanded and len(chosen) > 1:
        announce(_asked(patterns, where), chosen)
    return chosen


def _having(runs: pd.DataFrame, chosen: list[str], key: str, value: str) -> list[str]:
    """The runs of ``chosen`` whose label ``key`` matches ``value`` (a string or glob)."""
    labels = [column for column in runs.columns if column != "run"]
    if key not in labels:
        close = similar(key, labels)
        hint = f"; did you mean {close[0]!r}?" if close else f" (labels: {', '.join(labels) or 'none'})"
        raise InputError(f"no run has a label {key!r}{hint}")
    values = dict(zip(runs["run"].astype(str), runs[key]))
    kept = [run for run in chosen if _matches(values.get(run), value)]
    if not kept and chosen:
        seen = sorted({str(values[run]) for run in chosen if not _missing(values.get(run))})
        among = "" if len(chosen) == len(values) else f" among the {len(chosen)} selected"
        raise NotFound(f"no run{among} has {key}={value!r} ({key} is {', '.join(map(repr, seen)) or 'not set'} there)")
    return kept


def _matches(label, value: str) -> bool:
    return not _missing(label) and fnmatch.fnmatchcase(str(label), value)


def _missing(label) -> bool:
    return label is None or (isinstance(label, float) and label != label)


def _asked(patterns: Sequence[str] | None, where: Mapping[str, str] | None) -> str:
    parts = [f"--runs {','.join(patterns)}"] if patterns else []
    parts += [f"--where {key}={value}" for key, value in (where or {}).items()]
    return " ".join(parts) or "every run"


def describe(asked: str, runs: list[str]) -> str:
    """The line that says which runs a selection took, e.g. ``--runs seed*: 3 runs (seed0, seed1, seed2)``."""
    shown = ", ".join(runs[:_SHOWN]) + (", …" if len(runs) > _SHOWN else "")
    return f"{asked}: {len(runs)} runs ({shown})"
