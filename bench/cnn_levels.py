"""The convolutional workload of the percolation and spanning benchmarks (issue 14), shared by both.

OpenLTH's ``cifar_vgg_16`` (14.7 M kernel weights) with torch's initialisation (seed 0), traced once, and
its IMP levels at 20 % per level: level L keeps the (0.8 ** L) largest |w| of the whole network (what
OpenLTH's global magnitude pruning reaches at level L of a run rewound to these weights). The baseline of
both benchmarks is one ``scipy.sparse.csgraph.connected_components`` call on the level's channel graph,
synapses and connections, its CSR built from the edge arrays.
"""
from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

LEVELS = (0, 1, 3, 7, 10, 15)
"""Sparsities 0, 20, 48.8, 79.0, 89.3 and 96.5 %."""


def vgg16_levels(levels=LEVELS) -> tuple[float, list]:
    """Seconds to trace VGG-16, and its checkpoints at ``levels``."""
    import dataclasses

    import torch

    from netarchive.loaders.traced import from_module
    from netarchive.zoo.openlth import cifar_vgg_16

    torch.manual_seed(0)
    start = time.perf_counter()
    dense = from_module(cifar_vgg_16(), run="vgg16", level=0, input_shape=(3, 32, 32))
    traced = time.perf_counter() - start
    magnitude = np.abs(dense.edge_list()[2])
    ranked = np.sort(magnitude)[::-1]
    checkpoints = []
    for level in levels:
        kept = int(round(0.8**level * len(ranked)))
        checkpoint = dense if level == 0 else dense.subnetwork(magnitude >= ranked[kept - 1])
        checkpoints.append(dataclasses.replace(checkpoint, level=level))
    return traced, checkpoints


def channel_components(g) -> None:
    """The baseline: components of a channel graph (synapses and connections), CSR built from its arrays."""
    src, dst = np.concatenate([g.src, g.link_src]), np.concatenate([g.dst, g.link_dst])
    n = g.neurons
    connected_components(sp.csr_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n)), directed=False)


def interleaved(jobs: dict, repeat: int) -> dict[str, float]:
    """Best time of each job over ``repeat`` rounds, the jobs taking turns (the machine's load is shared)."""
    times = {name: [] for name in jobs}
    for _ in range(repeat):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}
