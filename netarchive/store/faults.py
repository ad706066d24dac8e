"""Named points of a write at which the tests stop the process, the way a crash or Ctrl-C would.

``NETARCHIVE_CRASH_AT=POINT[#N][+SECONDS][:INT]`` makes the process send itself SIGKILL (or SIGINT with
``:INT``) when it reaches ``POINT`` (for the ``N``-th time, default the first), or ``SECONDS`` after
reaching it, from a timer thread, so that the signal lands in the middle of the statement that follows
(a COPY, a COMMIT, a CHECKPOINT). The points
are listed in :data:`POINTS`; tests/test_crashes.py kills an ingest, a replace and an ``rm`` at each.
Unset, :func:`reach` costs one dictionary lookup.
"""
from __future__ import annotations

import os
import signal
import threading

POINTS = (
    "transaction",   # a write transaction is about to begin
    "neurons",       # about to COPY the neurons of a new checkpoint
    "synapses",      # about to COPY its synapses (into the synapse table, or the rebuilt one)
    "commit",        # about to COMMIT (LadybugDB's post-commit checkpoint runs inside it)
    "checkpoint",    # about to force the durable CHECKPOINT after a commit
    "publish",       # about to commit the small transaction that makes a new checkpoint visible
    "remove",        # about to delete the rows of a removed or replaced checkpoint
    "swap",          # about to swap a rebuilt synapse table in for the old one
)


_arrivals: dict[str, int] = {}


def reach(point: str) -> None:
    """Stop the process here if the test hook names ``point``."""
    wanted = os.environ.get("NETARCHIVE_CRASH_AT")
    if not wanted:
        return
    name, _, how = wanted.partition(":")
    name, _, delay = name.partition("+")
    name, _, nth = name.partition("#")
    if name != point:
        return
    _arrivals[point] = _arrivals.get(point, 0) + 1
    if _arrivals[point] != int(nth or 1):
        return
    sig = signal.SIGINT if how.upper() == "INT" else signal.SIGKILL
    os.environ.pop("NETARCHIVE_CRASH_AT")  # once per process
    if delay:
        timer = threading.Timer(float(delay), os.kill, (os.getpid(), sig))
        timer.daemon = True
        timer.start()
    else:
        os.kill(os.getpid(), sig)
