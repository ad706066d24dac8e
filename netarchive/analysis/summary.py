"""One row of scalars per checkpoint, from every analysis family: the table a study starts from.

Columns: ``sparsity``; from :mod:`components` ``components``, ``giant_fraction``, ``inputs_connected``,
``outputs_connected``; from :mod:`percolation` the four thresholds ``p_c_*``; from :mod:`persistence`
``np_total`` and ``np_normalized_mean`` (Rieck et al. 2019, global normalisation, p = 2); from
:mod:`spanning` the network's ``compression`` (dense weights / synapses), critical ``tccr`` and
``past_critical``; from :mod:`motifs` ``z_<motif>`` for the order-2 motifs against the exact ``fixed``
null (Zahn et al.); from :mod:`locality` ``locality``, the mean locality of the units of the first Linear
layer that reads pixels (the first layer of an MLP given an input shape, the Linear layer after a flattened
feature map; NaN where there is none). Every value equals what the analysis's own command reports for
the checkpoint, convolutional and residual networks included (on their channel graph, connections part of
connectivity).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from netarchive.analysis.components import components
from netarchive.analysis.locality import check_layers, unit_locality
from netarchive.analysis.motifs import motifs
from netarchive.analysis.percolation import thresholds
from netarchive.analysis.persistence import neural_persistence
from netarchive.analysis.spanning import tccr
from netarchive.errors import InputError
from netarchive.model import Checkpoint

ORDER_2_MOTIFS = ("diverging", "converging", "chain")
COLUMNS = (
    "components", "giant_fraction", "inputs_connected", "outputs_connected",
    "p_c_molloy_reed", "p_c_branching", "p_c_measured", "p_c_seed",
    "np_total", "np_normalized_mean", "compression", "tccr", "past_critical",
    *(f"z_{motif}" for motif in ORDER_2_MOTIFS), "locality",
)


def summary_row(checkpoint: Checkpoint, samples: int = 10, seed: int = 0) -> pd.DataFrame:
    """The scalars of one checkpoint (see the module docstring), one row with ``run``, ``level``,
    ``sparsity`` first; ``samples`` and ``seed`` are those of the measured percolation threshold."""
    row = {"run": checkpoint.run, "level": checkpoint.level, "sparsity": checkpoint.sparsity}
    parts = components(checkpoint).iloc[0]
    row.update({key: parts[key] for key in COLUMNS[:4]})
    row.update(thresholds(checkpoint, samples=samples, seed=seed).iloc[0][list(COLUMNS[4:8])].to_dict())
    network = neural_persistence(checkpoint).query("scope == 'network'").iloc[0]
    row.update(np_total=network.np_total, np_normalized_mean=network.np_normalized_mean)
    critical = tccr(checkpoint).query("scope == 'network'").iloc[0]
    row.update(compression=critical.compression, tccr=critical.tccr, past_critical=bool(critical.past_critical))
    counted = motifs(checkpoint, null="fixed", motifs=ORDER_2_MOTIFS)
    whole = counted[counted.layer.astype(str) == "all"].set_index("motif").z
    row.update({f"z_{motif}": float(whole.get(motif, np.nan)) for motif in ORDER_2_MOTIFS})
    row["locality"] = _first_locality(checkpoint)
    return pd.DataFrame([row])


def _first_locality(checkpoint: Checkpoint) -> float:
    """The mean locality of the first Linear layer that reads pixels, NaN when no layer does."""
    try:
        first = check_layers(checkpoint, None, every=False)
    except InputError:
        return np.nan
    return float(unit_locality(checkpoint, layers=first).locality.mean())
