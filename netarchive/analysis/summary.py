"""One row of scalars per checkpoint, from every analysis family: the table a study starts from.

Columns: ``sparsity``; from :mod:`components` ``components``, ``giant_fraction``, ``inputs_connected``,
``outputs_connected``; from :mod:`percolation` the four thresholds ``p_c_*``; from :mod:`persistence`
``np_total`` and ``np_normalized_mean`` (Rieck et al. 2019, global normalisation, p = 2); from
:mod:`spanning` the network's ``compression`` (dense weights / synapses), critical ``tccr`` and
``past_critical``; from :mod:`motifs` ``z_<motif>`` for the order-2 motifs against the exact ``fixed``
null (Zahn et al.); from :mod:`locality` ``locality_layer1``, the mean locality of the first hidden
layer's units when the inputs are pixels (NaN otherwise). Every value equals what the analysis's own
command reports for the checkpoint.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from netarchive.analysis.components import components
from netarchive.analysis.locality import unit_locality
from netarchive.analysis.motifs import motifs
from netarchive.analysis.percolation import RANDOM_ORDERS, thresholds
from netarchive.analysis.persistence import neural_persistence
from netarchive.analysis.spanning import tccr
from netarchive.model import Checkpoint

ORDER_2_MOTIFS = ("diverging", "converging", "chain")
COLUMNS = (
    "components", "giant_fraction", "inputs_connected", "outputs_connected",
    "p_c_molloy_reed", "p_c_branching", "p_c_measured", "p_c_seed",
    "np_total", "np_normalized_mean", "compression", "tccr", "past_critical",
    *(f"z_{motif}" for motif in ORDER_2_MOTIFS), "locality_layer1",
)


def summary_row(checkpoint: Checkpoint, samples: int = RANDOM_ORDERS, seed: int = 0) -> pd.DataFrame:
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
    row["locality_layer1"] = (
        float(unit_locality(checkpoint, layers=[1]).locality.mean()) if checkpoint.input_shape else np.nan
    )
    return pd.DataFrame([row])
