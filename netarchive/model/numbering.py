"""Global neuron numbering, shared by the checkpoint and its unrolled graph: the neurons of group ``g``
are ``offsets[g] ... offsets[g + 1] - 1``."""
from __future__ import annotations

import numpy as np


def offsets_of(widths) -> np.ndarray:
    """Global index of the first neuron of each group, plus the total at the end."""
    return np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)


class Numbered:
    """``offsets`` and ``neurons`` of anything with ``widths`` (neurons per group)."""

    widths: tuple[int, ...]

    @property
    def offsets(self) -> np.ndarray:
        """Global index of the first neuron of each group, plus the total at the end."""
        return offsets_of(self.widths)

    @property
    def neurons(self) -> int:
        return int(sum(self.widths))
