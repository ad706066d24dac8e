"""Speed of the spanning-forest analyses on the FCN of the ImageNet32 study.

Workload: a dense 3072-1024-1024-1024-1000 network (6.27 M weights, random normal weights, seed 0) and
the same network magnitude-pruned to 90 % sparsity (and a worst case for the algorithm). Reported as ratios measured in this one run:

- ``neural_persistence`` for all layers (forests included) against
  ``scipy.sparse.csgraph.minimum_spanning_tree`` on the same layers (CSR of -|w| built from the model's
  edge arrays; target: within 2x) and against networkx ``maximum_spanning_tree``, timed on the last
  layer (1.02 M edges) and extrapolated to all layers by edge count (target: at least 20x faster);
- the ``in_msf`` write-back of the dense checkpoint: updating only the changed rows (the default)
  against rebuilding the whole synapse table in bulk;
- convolutions (issue 14): ``neural_persistence`` of all layers of OpenLTH's VGG-16 for CIFAR (14.7 M
  weights, torch's initialisation, seed 0) on the channel graph at its IMP levels (``bench/cnn_levels.py``),
  against one ``scipy.sparse.csgraph.connected_components`` call on the channel graph (target: within 3x),
  and the unrolled persistence of ResNet-20 (37 M unrolled edges) as a rate.

    python bench/bench_spanning.py [--repeat 3] [--no-store] [--no-conv]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import minimum_spanning_tree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnn_levels import channel_components, interleaved, vgg16_levels  # noqa: E402

import netarchive  # noqa: E402
import netarchive.store.ladybug as ladybug_store  # noqa: E402
from netarchive.analysis.persistence import neural_persistence  # noqa: E402
from netarchive.analysis.spanning import forest_synapses, graph_size, spanning_forests  # noqa: E402
from netarchive.model import Checkpoint, Layer  # noqa: E402

WIDTHS = (3072, 1024, 1024, 1024, 1000)


def dense_checkpoint() -> Checkpoint:
    rng = np.random.default_rng(0)
    layers = [
        Layer.from_dense(f"fc{l}.weight", rng.normal(size=(o, i)).astype(np.float32))
        for l, (i, o) in enumerate(zip(WIDTHS, WIDTHS[1:]))
    ]
    return Checkpoint("bench", 0, tuple(layers))


def adversarial() -> Checkpoint:
    """One 3072 -> 1024 layer whose heaviest synapses all go to the last outputs: each batch of the
    filter-Kruskal then connects only a few outputs and filters little (its worst case)."""
    rng = np.random.default_rng(0)
    weight = (np.arange(1024)[:, None] + rng.random((1024, 3072))).astype(np.float32)
    return Checkpoint("bench", 2, (Layer.from_dense("rows.weight", weight),))


def pruned(checkpoint: Checkpoint, sparsity: float) -> Checkpoint:
    layers = []
    for layer in checkpoint.layers:
        keep = np.argpartition(-np.abs(layer.w), int((1 - sparsity) * layer.edges))[: int((1 - sparsity) * layer.edges)]
        layers.append(Layer(layer.name, layer.inputs, layer.outputs, layer.src[keep], layer.dst[keep], layer.w[keep]))
    return Checkpoint(checkpoint.run, 1, tuple(layers))


def best(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def scipy_forests(checkpoint: Checkpoint) -> float:
    """Total |w| of the forests found by scipy's Kruskal on -|w| (the baseline)."""
    total = 0.0
    for layer in checkpoint.layers:
        v = layer.inputs + layer.outputs
        graph = sp.csr_matrix((-np.abs(layer.w).astype(np.float64), (layer.src, layer.inputs + layer.dst)), shape=(v, v))
        total -= minimum_spanning_tree(graph).sum()
    return total


def networkx_layer(layer: Layer) -> float:
    import networkx as nx

    graph = nx.Graph()
    graph.add_weighted_edges_from(zip(layer.src.tolist(), (layer.dst + layer.inputs).tolist(), np.abs(layer.w).tolist()))
    return nx.maximum_spanning_tree(graph).size(weight="weight")


def bench_analysis(checkpoint: Checkpoint, repeat: int, with_networkx: bool) -> None:
    ours, table = best(lambda: neural_persistence(checkpoint), repeat)
    baseline, scipy_total = best(lambda: scipy_forests(checkpoint), repeat)
    forests = spanning_forests(checkpoint)
    our_total = sum(float(np.abs(l.w[f]).astype(np.float64).sum()) for l, f in zip(checkpoint.layers, forests))
    assert abs(our_total - scipy_total) < 1e-6 * our_total, (our_total, scipy_total)
    print(f"  neural_persistence, all layers:      {ours:7.3f} s  (np_total {table['np_total'].iloc[-1]:.4f})")
    print(f"  scipy minimum_spanning_tree:         {baseline:7.3f} s  -> ours / scipy = {ours / baseline:.2f} (target <= 2)")
    if with_networkx:
        last = checkpoint.layers[-1]
        seconds, _ = best(lambda: networkx_layer(last), 1)
        extrapolated = seconds * checkpoint.edges / last.edges
        print(f"  networkx, layer {last.name} ({last.edges:,} edges): {seconds:.2f} s, "
              f"all layers extrapolated {extrapolated:.1f} s -> networkx / ours = {extrapolated / ours:.0f}x (target >= 20)")


def bench_write_back(checkpoint: Checkpoint) -> None:
    which, src, dst, _, _ = forest_synapses(checkpoint, spanning_forests(checkpoint))  # ky, kx: -1 (Linear)
    with tempfile.TemporaryDirectory() as directory, netarchive.open(Path(directory) / "archive") as archive:
        start = time.perf_counter()
        archive.write(checkpoint)
        print(f"  ingest of {checkpoint.edges:,} synapses (for reference): {time.perf_counter() - start:.2f} s")
        start = time.perf_counter()
        archive.store.set_synapse_flag(checkpoint.run, checkpoint.level, "in_msf", which, src, dst)
        rows = time.perf_counter() - start
        half = slice(0, None, 2)  # unmark every other forest synapse, by rebuilding the table
        ladybug_store.UPDATE_REBUILD_FACTOR = 10**12
        start = time.perf_counter()
        archive.store.set_synapse_flag(checkpoint.run, checkpoint.level, "in_msf", which[half], src[half], dst[half])
        rebuild = time.perf_counter() - start
        count = archive.cypher("MATCH ()-[s:SYNAPSE]->() WHERE s.in_msf RETURN count(*)").iloc[0, 0]
        assert count == len(src[half]), (count, len(src[half]))
    print(f"  write-back of {len(src):,} forest synapses, changed rows only (default): {rows:.2f} s "
          f"({len(src) / rows:,.0f} rows/s)")
    print(f"  unmarking {len(src) - len(src[half]):,} of them by rebuilding the synapse table: {rebuild:.2f} s "
          f"({checkpoint.edges / rebuild:,.0f} synapses/s) -> rebuild / rows = {rebuild / rows:.1f}x")


def bench_convolutions(repeat: int) -> None:
    import torch

    from netarchive.analysis.graphs import graph
    from netarchive.loaders.traced import from_module
    from netarchive.zoo.openlth import cifar_resnet_20

    traced, levels = vgg16_levels()
    print(f"  tracing and reading OpenLTH's VGG-16 ({levels[0].edges:,} weights): {traced:.2f} s (not in the ratios)")
    worst = 0.0
    for checkpoint in levels:
        g = graph(checkpoint)
        times = interleaved({"cc": lambda: channel_components(g), "np": lambda: neural_persistence(checkpoint)}, repeat)
        worst = max(worst, times["np"] / times["cc"])
        print(f"  VGG-16 level {checkpoint.level}, sparsity {checkpoint.sparsity:.3f} ({checkpoint.edges:,} kernel weights): "
              f"neural_persistence {times['np']:.3f} s; connected_components of the channel graph {times['cc']:.3f} s "
              f"-> ours / components = {times['np'] / times['cc']:.2f}")
    print(f"  VGG-16, worst level: {worst:.2f}x (target <= 3)")
    torch.manual_seed(0)
    resnet = from_module(cifar_resnet_20(), run="r20", level=0, input_shape=(3, 32, 32))
    unrolled = sum(graph_size(layer, unroll=True)[2] for layer in resnet.layers)
    seconds, _ = best(lambda: neural_persistence(resnet, unroll=True), repeat)
    print(f"  ResNet-20 unrolled ({unrolled:,} edges): neural_persistence --unroll {seconds:.2f} s "
          f"({unrolled / seconds / 1e6:.1f} M edges/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-store", action="store_true", help="Skip the write-back benchmark.")
    parser.add_argument("--no-conv", action="store_true", help="Skip the convolutional networks.")
    args = parser.parse_args()
    dense = dense_checkpoint()
    print(f"dense {'-'.join(map(str, WIDTHS))}: {dense.edges:,} synapses")
    bench_analysis(dense, args.repeat, with_networkx=True)
    sparse = pruned(dense, 0.9)
    print(f"magnitude-pruned to sparsity {sparse.sparsity:.2f}: {sparse.edges:,} synapses")
    bench_analysis(sparse, args.repeat, with_networkx=False)
    print("worst case: one 3072x1024 layer, |w| growing with the output index")
    bench_analysis(adversarial(), args.repeat, with_networkx=False)
    if not args.no_conv:
        print("convolutions: channel graphs and unrolled layers")
        bench_convolutions(args.repeat)
    if not args.no_store:
        print("write-back (embedded LadybugDB), dense checkpoint")
        bench_write_back(dense)


if __name__ == "__main__":
    main()
