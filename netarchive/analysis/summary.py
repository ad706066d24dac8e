"""One row of scalars per checkpoint, from every analysis family: the table a study starts from.

Columns: :data:`GLOSSARY` says what each means (``netarchive query summary --glossary``): the components and
whether inputs reach outputs (:mod:`components`), the four percolation thresholds (:mod:`percolation`),
neural persistence (Rieck et al. 2019, global normalisation, p = 2; :mod:`persistence`), compression against
the critical TCCR (:mod:`spanning`), the z-scores of the order-2 motifs against the exact ``fixed`` null
(Zahn et al.; :mod:`motifs`) and ``locality``, the mean locality of the units of the first Linear layer that
reads pixels (the first layer of an MLP given an input shape, the Linear layer after a flattened feature
map; NaN where there is none; :mod:`locality`). Every value equals what the analysis's own command reports
for the checkpoint, convolutional and residual networks included (on their channel graph, connections part
of connectivity).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from netarchive.analysis.components import components
from netarchive.analysis.locality import check_layers, unit_locality
from netarchive.analysis.motifs import motifs
from netarchive.analysis.percolation import RANDOM_ORDERS, thresholds
from netarchive.analysis.persistence import neural_persistence
from netarchive.analysis.spanning import tccr
from netarchive.errors import InputError
from netarchive.model import Checkpoint

ORDER_2_MOTIFS = ("diverging", "converging", "chain")
GLOSSARY = {
    "run": "the run (one pruning experiment)",
    "level": "the pruning level of the run (0 = dense)",
    "sparsity": "fraction of the dense layers' weights pruned: 1 − synapses / dense weights",
    "components": "connected components of the network (a CNN's channel graph, connections included), isolated "
                  "neurons included",
    "giant_fraction": "neurons (channels) in the largest component / all neurons",
    "inputs_connected": "fraction of the input neurons with a path to some output",
    "outputs_connected": "fraction of the output neurons reached from some input",
    "p_c_molloy_reed": "percolation threshold ⟨k⟩/(⟨k²⟩ − ⟨k⟩) (Molloy–Reed; Cohen et al. 2000), as a kept fraction of the synapses",
    "p_c_branching": "mean-field threshold of the layered network: 1/λ_max of its neuron-group matrix e_gh/√(n_g n_h), a kept fraction",
    "p_c_measured": "kept fraction where the mean finite-cluster size peaks, averaged over random orderings (query threshold)",
    "p_c_seed": "the percolation seed's 1/(2N − 1) for a chain of Linear layers of equal hidden widths N, as a kept "
                "fraction of this checkpoint's synapses; empty for other networks",
    "np_total": "neural persistence summed over the weight layers (Rieck et al. 2019; global normalisation, p = 2)",
    "np_normalized_mean": "normalised neural persistence, mean over the weight layers",
    "compression": "dense weights / surviving synapses",
    "tccr": "topologically critical compression ratio of the network: dense weights / Σ layer spanning-tree sizes (Balwani & Krzyston 2022)",
    "past_critical": "fewer synapses than the layers' spanning trees need: some layer is necessarily disconnected",
    **{f"z_{motif}": f"z-score of the {motif} motifs of the whole network against the exact fixed null (Zahn et al. 2023)"
       for motif in ORDER_2_MOTIFS},
    "locality": "mean locality of the units of the first Linear layer reading pixels, expected / observed pixel distance "
                "(> 1: more local than random); empty where no layer reads pixels",
}
"""Every column of the summary and what it means; the stored metrics (``accuracy``, ``loss``, …) follow them."""
METRICS_NOTE = "metrics stored with the checkpoint (ingest --metrics, an OpenLTH logger, eval --store-metrics)"
LABELS_NOTE = "labels of the run (ingest --meta, OpenLTH's hparams: dataset, seed, model, …), after the metrics"
COLUMNS = tuple(GLOSSARY)[3:]
"""The columns the analyses give (after ``run``, ``level``, ``sparsity``)."""


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
    row["locality"] = _first_locality(checkpoint)
    return pd.DataFrame([row])


def _first_locality(checkpoint: Checkpoint) -> float:
    """The mean locality of the first Linear layer that reads pixels, NaN when no layer does."""
    try:
        first = check_layers(checkpoint, None, every=False)
    except InputError:
        return np.nan
    return float(unit_locality(checkpoint, layers=first).locality.mean())
