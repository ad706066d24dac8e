"""Errors a user can act on. The CLI prints them as one line; anything else is a bug and says so."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class NetarchiveError(Exception):
    """Base class: the message is complete and meant for the user."""


class InputError(NetarchiveError):
    """A file, tensor, shape or argument the user gave cannot be used."""


class NotFound(NetarchiveError):
    """An unknown run, level or archive; the message says what exists instead."""

    @classmethod
    def run(cls, run: str, location: str, runs: Iterable[str] = ()) -> "NotFound":
        """``run`` is not archived; ``runs`` are the archived ones (the closest are suggested).

        >>> str(NotFound.run("digit", "out/archive", ["digits", "mnist"]))
        "no run named 'digit' in the archive at out/archive; did you mean 'digits'?"
        """
        return cls(f"no run named {run!r} in the archive at {location}{_what_exists(run, sorted(runs))}")

    @classmethod
    def pattern(cls, pattern: str, location: str, runs: Iterable[str] = ()) -> "NotFound":
        """No run matches the glob ``pattern``; the runs closest to it (globbing characters left out) are named."""
        plain = pattern.translate(str.maketrans("", "", "*?[]!"))
        return cls(f"no run matches {pattern!r} in the archive at {location}{_what_exists(plain, sorted(runs))}")

    @classmethod
    def checkpoint(cls, run: str, level: int, location: str, levels: Iterable[int] = ()) -> "NotFound":
        """Run ``run`` has no level ``level``; ``levels`` are the ones it has.

        >>> str(NotFound.checkpoint("digits", 16, "out/archive", range(16)))
        "run 'digits' has no level 16 in the archive at out/archive; it has levels 0–15"
        """
        levels = sorted(set(int(level) for level in levels))
        if not levels:
            return cls(f"run {run!r} has no level {level} in the archive at {location} (see `netarchive ls --run {run}`)")
        has = f"level {levels[0]}" if len(levels) == 1 else f"levels {compact_ranges(levels)}"
        return cls(f"run {run!r} has no level {level} in the archive at {location}; it has {has}")

    @classmethod
    def unfinished(cls, run: str, level: int) -> "NotFound":
        return cls(
            f"run {run!r} level {level} was left unfinished by an interrupted write or removal: ingest it again "
            "(the next write, or `netarchive check --repair`, removes what was left)"
        )


def similar(name: str, names: Iterable[str], n: int = 3) -> list[str]:
    """The names closest to ``name`` (difflib's ratio, at least 0.6), best first, ties in name order."""
    scored = [(difflib.SequenceMatcher(None, name, each).ratio(), each) for each in set(names)]
    return [each for score, each in sorted(scored, key=lambda pair: (-pair[0], pair[1])) if score >= 0.6][:n]


def _what_exists(name: str, names: list[str]) -> str:
    if not names:
        return " (the archive is empty)"
    close = similar(name, names)
    if close:
        return "; did you mean " + " or ".join(repr(each) for each in close) + "?"
    shown = ", ".join(names[:6]) + (f", … ({len(names)} runs)" if len(names) > 6 else "")
    return f" (runs: {shown})"


def compact_ranges(numbers: Iterable[int]) -> str:
    """Sorted integers as ranges: ``[0, 1, 2, 3, 5, 7, 8]`` -> ``"0–3, 5, 7–8"``."""
    ordered = sorted(set(numbers))
    parts, start = [], None
    for i, number in enumerate(ordered):
        if start is None:
            start = number
        if i + 1 == len(ordered) or ordered[i + 1] != number + 1:
            parts.append(str(start) if start == number else f"{start}–{number}")
            start = None
    return ", ".join(parts)


class AlreadyArchived(NetarchiveError):
    """A (run, level) that is already in the archive, ingested again without ``--replace``."""


class StoreError(NetarchiveError):
    """The archive cannot be opened, is busy, or refused a statement."""


class ArchiveBusy(StoreError):
    """Another process holds the archive (a writer committing, or one that must finish a recovery) for
    longer than this command waits."""


class DamagedArchive(StoreError):
    """What the archive holds contradicts its own records (counts, files, log); ``netarchive check`` says
    what and ``netarchive check --repair`` mends what can be mended."""

    @classmethod
    def checkpoint(cls, run: str, level: int, what: str) -> "DamagedArchive":
        """The one-line error for a checkpoint whose rows contradict its records."""
        return cls(
            f"run {run!r} level {level} is damaged: {what} "
            "(`netarchive check` lists what is wrong, `netarchive check --repair` removes it)"
        )


def first_line(error: BaseException | str, limit: int = 200) -> str:
    """The first line of an error's message (its type when it has none; LadybugDB's messages run on with
    context), for one-line errors."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__
