"""Speed of the percolation curves on the FCN of the ImageNet32 study (issue 7).

Workload: the dense 3072-1024-1024-1024-1000 network of the foundation benchmark (6.27 M weights, random
normal weights, seed 0) and its 90 %-sparse magnitude-pruned level (the top 10 % |w| of each layer, as
IMP keeps them). Reported as ratios measured in this one run:

- a whole 101-point ``descending`` curve, one ``random`` ordering and the ``ascending`` curve
  / one ``scipy.sparse.csgraph.connected_components`` call on the whole checkpoint, CSR build included
  (target <= 3x);
- networkx recomputing the components at each of the 101 points / our whole curve (target >= 50x).
  networkx is timed at a few points (graph of the first n edges of the order + ``connected_components``),
  a cost a + b·n is fitted to them and summed over the 101 points' n.

Convolutional networks (issue 14; skip with ``--no-conv``): OpenLTH's ``cifar_vgg_16`` at its IMP levels
(``bench/cnn_levels.py``) and ``cifar_resnet_20`` at 80 % sparsity (global magnitude pruning of torch's
initial weights, traced), each 101-point curve on the channel graph (one synapse per kernel weight,
connections permanent) / one ``connected_components`` call on that graph (synapses and connections, CSR
build included; target <= 3x), and ResNet-20's curve with ``unroll=True`` / the components of its unrolled
graph (the unrolling, which the curve does itself, timed on its own).

    python bench/bench_percolation.py [--repeat 7] [--no-conv]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed netarchive

from cnn_levels import channel_components, interleaved, vgg16_levels  # noqa: E402

from netarchive.analysis import percolation as P  # noqa: E402
from netarchive.model import Checkpoint, Layer  # noqa: E402

WIDTHS = (3072, 1024, 1024, 1024, 1000)


def make_checkpoints() -> list[Checkpoint]:
    rng = np.random.default_rng(0)
    dense, sparse = [], []
    for l, (n_in, n_out) in enumerate(zip(WIDTHS, WIDTHS[1:])):
        dst, src = np.divmod(np.arange(n_in * n_out), n_in)
        w = rng.normal(size=n_in * n_out).astype(np.float32)
        dense.append(Layer(f"fc{l}.weight", n_in, n_out, src, dst, w))
        keep = np.argpartition(-np.abs(w), len(w) // 10)[: len(w) // 10]
        sparse.append(Layer(f"fc{l}.weight", n_in, n_out, src[keep], dst[keep], w[keep]))
    return [Checkpoint("bench", 0, tuple(dense)), Checkpoint("bench", 1, tuple(sparse))]


def best(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def scipy_components(checkpoint: Checkpoint) -> None:
    src, dst, _, _ = checkpoint.edge_list()
    n = checkpoint.neurons
    connected_components(sp.csr_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n)), directed=False)


def networkx_point(checkpoint: Checkpoint, order: np.ndarray, n: int) -> tuple[float, float]:
    """Seconds for networkx to build the graph of the first n edges and find its components, and for the
    components alone (the graph already built)."""
    import networkx as nx

    src, dst, _, _ = checkpoint.edge_list()
    pairs = list(zip(src[order[:n]].tolist(), dst[order[:n]].tolist()))
    start = time.perf_counter()
    graph = nx.Graph()
    graph.add_nodes_from(range(checkpoint.neurons))
    graph.add_edges_from(pairs)
    built = time.perf_counter()
    sizes = sorted((len(c) for c in nx.connected_components(graph)), reverse=True)
    assert sizes
    end = time.perf_counter()
    return end - start, end - built


def networkx_curve_estimate(checkpoint: Checkpoint, fractions) -> tuple[float, float, str]:
    """Extrapolated seconds for networkx at all 101 points (build + components, components alone), from a
    fit a + b·n at the sampled points."""
    order = P.edge_order(checkpoint, "descending")
    sample = np.array([int(f * checkpoint.edges) for f in fractions])
    seconds = np.array([networkx_point(checkpoint, order, int(n)) for n in sample])
    _, edges_kept = P.kept_points(101, checkpoint.edges)
    totals = []
    for column in range(2):
        b, a = np.polyfit(sample, seconds[:, column], 1)
        totals.append(float(np.sum(a + b * edges_kept)))
    shown = ", ".join(f"{n / checkpoint.edges:.0%}: {s:.2f} s ({c:.2f} s components)" for n, (s, c) in zip(sample, seconds))
    return totals[0], totals[1], shown


def resnet20() -> Checkpoint:
    """OpenLTH's ResNet-20 for CIFAR, 80 % of the weights pruned by global magnitude, traced."""
    import torch
    from torch import nn
    from torch.nn.utils import prune

    from netarchive.loaders.traced import from_module
    from netarchive.zoo import openlth

    torch.manual_seed(0)
    model = openlth.cifar_resnet_20().eval()
    weights = [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    prune.global_unstructured(weights, pruning_method=prune.L1Unstructured, amount=0.8)
    return from_module(model, run="bench", level=1, input_shape=(3, 32, 32))


def convolutional_rows(repeat: int) -> None:
    from netarchive.analysis.graphs import graph

    traced, levels = vgg16_levels()
    print(f"\ntracing VGG-16: {traced:.2f} s (not in the ratios)")
    print("\n| network | graph | sparsity | synapses | edges | connected_components | descending | random | ascending |")
    print("|---|---|---|---|---|---|---|---|---|")
    worst = {order: 0.0 for order in P.ORDERS}
    for name, checkpoint in [("VGG-16", c) for c in levels] + [("ResNet-20", resnet20())]:
        for unroll in ((False, True) if name == "ResNet-20" else (False,)):
            start = time.perf_counter()
            g = graph(checkpoint, unroll)
            built = time.perf_counter() - start
            jobs = {"cc": lambda g=g: channel_components(g)}
            for order in P.ORDERS:
                jobs[order] = lambda order=order, unroll=unroll: P.percolation(checkpoint, order, points=101, samples=1, unroll=unroll)
            times = interleaved(jobs, repeat)
            base = times.pop("cc")
            if name == "VGG-16":
                worst = {order: max(worst[order], times[order] / base) for order in P.ORDERS}
            cells = [f"{times[o]:.3f} s ({times[o] / base:.2f}x)" for o in P.ORDERS]
            kind = f"unrolled (built in {built:.2f} s, in each curve)" if unroll else "channel"
            print(f"| {name} | {kind} | {checkpoint.sparsity:.1%} | {checkpoint.edges:,} | {g.edges + g.connections:,} | "
                  f"{base:.3f} s | {cells[0]} | {cells[2]} | {cells[1]} |")
    print("\nVGG-16, worst level: " + ", ".join(f"{order} {ratio:.2f}x" for order, ratio in worst.items()) + " (target <= 3x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-conv", action="store_true", help="Only the FCN of the ImageNet32 study.")
    args = parser.parse_args()
    rows = []
    for checkpoint, fractions in zip(make_checkpoints(), [(0.01, 0.03, 0.1), (0.1, 0.3, 1.0)]):
        checkpoint.edge_list()  # built once, shared by every approach
        name = f"{'dense' if checkpoint.level == 0 else '90% sparse'} ({checkpoint.edges / 1e6:.2f} M edges)"
        jobs = {"cc": lambda: scipy_components(checkpoint)}
        for order in P.ORDERS:
            jobs[order] = lambda order=order: P.percolation(checkpoint, order, points=101, samples=1)
        times = interleaved(jobs, args.repeat)
        base, ours = times.pop("cc"), times
        canonical = best(lambda: P.percolation(checkpoint, "random", samples=1, canonical=True), 1)
        networkx_total, networkx_components, sampled = networkx_curve_estimate(checkpoint, fractions)
        print(f"\n{name}: V = {checkpoint.neurons}")
        print(f"  scipy connected_components (CSR build included): {base:.3f} s")
        for order, seconds in ours.items():
            print(f"  {order:>10} curve, 101 points: {seconds:.3f} s = {seconds / base:.2f}x one connected_components; "
                  f"networkx {networkx_total / seconds:,.0f}x slower")
        print(f"  random + --canonical: {canonical:.3f} s")
        print(f"  networkx sampled ({sampled})")
        print(f"  networkx, 101 points extrapolated: {networkx_total:.1f} s, of which components alone "
              f"{networkx_components:.1f} s ({networkx_components / max(ours.values()):,.0f}x our slowest curve)")
        rows.append((name, base, ours, networkx_total))
    print("\n| checkpoint | connected_components | descending | random (1 ordering) | ascending | networkx, 101 points (extrap.) |")
    print("|---|---|---|---|---|---|")
    for name, base, ours, nx_total in rows:
        cells = [f"{ours[o]:.3f} s ({ours[o] / base:.2f}x cc, {nx_total / ours[o]:,.0f}x faster than networkx)" for o in P.ORDERS]
        print(f"| {name} | {base:.3f} s | {cells[0]} | {cells[2]} | {cells[1]} | {nx_total:.1f} s |")
    if not args.no_conv:
        convolutional_rows(args.repeat)


if __name__ == "__main__":
    main()
