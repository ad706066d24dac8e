"""Motif counting and closed-form z-scores against igraph's ``motifs_randesu`` (size 3), in one run.

    pip install igraph            # the peer, only for this benchmark (extra "bench")
    python bench/bench_motifs.py              # 784-300-100 at 10 %, the study-size z-scores
    python bench/bench_motifs.py --dense      # also the dense 784-300-100 (igraph takes minutes)

Counts must be equal: in a layered graph the three connected 3-node classes igraph finds are the
diverging (out-star), converging (in-star) and chain (2-path) motifs summed over the layers.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netarchive.analysis.motifs import Batch, count_batch, motifs  # noqa: E402
from netarchive.model import Checkpoint, Layer  # noqa: E402


def sparse_checkpoint(widths, density, seed, run="r", level=0) -> Checkpoint:
    """Exactly round(density·n_in·n_out) synapses per layer, uniform, Gaussian weights (no dense draw)."""
    rng = np.random.default_rng(seed)
    layers = []
    for l, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        m = max(1, int(round(density * n_in * n_out)))
        slots = rng.choice(n_in * n_out, m, replace=False)
        layers.append(Layer(f"fc{l}.weight", n_in, n_out, slots // n_out, slots % n_out, rng.normal(size=m)))
    return Checkpoint(run, level, tuple(layers))


def timed(f, repeat=3):
    best, value = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        value = f()
        best = min(best, time.perf_counter() - start)
    return best, value


def igraph_counts(checkpoint):
    import igraph

    src, dst, _, _ = checkpoint.edge_list()
    graph = igraph.Graph(n=checkpoint.neurons, edges=np.column_stack([src, dst]).tolist(), directed=True)
    classes = {
        "diverging": igraph.Graph(3, [(0, 1), (0, 2)], directed=True).isoclass(),
        "converging": igraph.Graph(3, [(1, 0), (2, 0)], directed=True).isoclass(),
        "chain": igraph.Graph(3, [(0, 1), (1, 2)], directed=True).isoclass(),
    }

    def run():
        counts = graph.motifs_randesu(size=3)
        return {name: int(counts[k]) for name, k in classes.items()}, counts

    return run


def compare(widths, density, label, repeat):
    checkpoint = sparse_checkpoint(widths, density, seed=0)
    t_ig, (ig, raw) = timed(igraph_counts(checkpoint), repeat=repeat)
    others = [int(c) for k, c in enumerate(raw) if c == c and c > 0 and k not in ()]
    batch = Batch.of([checkpoint])
    three = ("diverging", "converging", "chain")
    t_ours, counts = timed(lambda: count_batch(batch, motifs=three), repeat=max(repeat, 5))
    ours = {name: int(sum(v[0] for k, v in counts.items() if k[0] == name)) for name in three}
    t_all, _ = timed(lambda: count_batch(batch), repeat=max(repeat, 3))
    t_z, _ = timed(lambda: motifs(checkpoint), repeat=max(repeat, 3))
    equal = ours == ig and sum(others) == sum(ig.values())
    print(f"\n## {label}: {'-'.join(map(str, widths))} at density {density:g} ({checkpoint.edges} synapses)")
    print(f"igraph motifs_randesu(size=3): {t_ig:.3f} s   counts {ig}")
    print(f"netarchive same 3 motifs:      {t_ours * 1e3:.2f} ms  counts {ours}  equal: {equal}")
    print(f"  ratio igraph / netarchive:   {t_ig / t_ours:,.0f}x")
    print(f"netarchive all 9 motifs:       {t_all * 1e3:.1f} ms ({t_ig / t_all:,.0f}x faster than igraph's 3)")
    print(f"netarchive all 9 + exact z:    {t_z * 1e3:.1f} ms")
    return equal


def study(networks, levels):
    widths = (10, 400, 400, 400, 16, 7)
    checkpoints = [sparse_checkpoint(widths, 0.02, seed=1000 * r + k, run=f"run{r}", level=k)
                   for r in range(networks) for k in range(levels)]
    start = time.perf_counter()
    table = motifs(checkpoints)
    t_exact = time.perf_counter() - start
    totals = table[table.layer == "all"]
    print(f"\n## study size: {networks} networks x {levels} levels of {'-'.join(map(str, widths))} at 98 % sparsity")
    print(f"closed-form (fixed) counts + E + SD + z, {len(table)} rows: {t_exact:.2f} s "
          f"({t_exact / len(checkpoints) * 1e3:.2f} ms per network)")
    start = time.perf_counter()
    signed = motifs(checkpoints[: max(1, len(checkpoints) // 10)], signed=True)
    t_signed = time.perf_counter() - start
    print(f"signed, {len(signed)} rows for {max(1, len(checkpoints) // 10)} networks: {t_signed:.2f} s")
    print("median z per motif:", totals.groupby("motif")["z"].median().round(2).to_dict())
    one = checkpoints[0]
    start = time.perf_counter()
    degree = motifs(one, null="degree", samples=1000, seed=0)
    t_degree = time.perf_counter() - start
    print(f"degree null, 1000 curveball samples of one network: {t_degree:.2f} s ({len(degree)} rows)")
    start = time.perf_counter()
    sampled = motifs(one, sample=True, samples=1000, seed=0)
    t_sampled = time.perf_counter() - start
    exact = motifs(one)
    print(f"fixed null sampled 1000x instead of closed form: {t_sampled:.2f} s, "
          f"closed form {t_exact / len(checkpoints) * 1e3:.2f} ms per network in a batch -> "
          f"{t_sampled / (t_exact / len(checkpoints)):,.0f}x")
    finite = np.isfinite(exact.z) & np.isfinite(sampled.z)
    print(f"  max |z exact - z sampled| over {int(finite.sum())} rows: {np.abs(exact.z - sampled.z)[finite].max():.3f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dense", action="store_true", help="also the dense 784-300-100 (igraph: minutes)")
    parser.add_argument("--networks", type=int, default=350)
    parser.add_argument("--levels", type=int, default=20)
    args = parser.parse_args()
    ok = compare((784, 300, 100), 0.10, "10 % density", repeat=3)
    if args.dense:
        ok &= compare((784, 300, 100), 1.0, "dense", repeat=1)
    study(args.networks, args.levels)
    if not ok:
        raise SystemExit("counts differ from igraph")


if __name__ == "__main__":
    main()
