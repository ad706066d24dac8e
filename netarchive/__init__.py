"""netarchive: archive pruned neural-network checkpoints as layered weighted graphs and compute the
network-science analytics of pruning studies on them. See :func:`open`, :class:`Archive` and :func:`check`."""
from netarchive.api import Archive, check, open
from netarchive.errors import NetarchiveError
from netarchive.model import Checkpoint, Layer

__all__ = ["Archive", "Checkpoint", "Layer", "NetarchiveError", "check", "open"]
