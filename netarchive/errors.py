"""Errors a user can act on. The CLI prints them as one line; anything else is a bug and says so."""


class NetarchiveError(Exception):
    """Base class: the message is complete and meant for the user."""


class InputError(NetarchiveError):
    """A file, tensor, shape or argument the user gave cannot be used."""


class NotFound(NetarchiveError):
    """An unknown run, level or archive."""

    @classmethod
    def run(cls, run: str, location: str) -> "NotFound":
        return cls(f"no run named {run!r} in the archive at {location} (see `netarchive ls`)")

    @classmethod
    def checkpoint(cls, run: str, level: int, location: str) -> "NotFound":
        return cls(f"run {run!r} has no level {level} in the archive at {location} (see `netarchive ls --run {run}`)")


class AlreadyArchived(NetarchiveError):
    """A (run, level) that is already in the archive, ingested again without ``--replace``."""


class StoreError(NetarchiveError):
    """The archive cannot be opened, is busy, or refused a statement."""


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type when it has none), for one-line errors."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__
