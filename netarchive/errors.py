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

    @classmethod
    def unfinished(cls, run: str, level: int) -> "NotFound":
        return cls(
            f"run {run!r} level {level} was left unfinished by an interrupted write or removal: ingest it again "
            "(the next write, or `netarchive check --repair`, removes what was left)"
        )


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
