"""Motif counts against brute-force enumeration, exact nulls against enumeration and 20 000 samples."""
from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import chisquare

import netarchive
from netarchive.analysis.motifs import (
    MOTIFS, Batch, _with_totals, count_batch, curveball, motifs, participation, remove_dead, sample_null, sign_label,
)
import netarchive.analysis.motifs as motif_module
from netarchive.cli import cli
from netarchive.errors import InputError
from netarchive.model import Checkpoint, Layer
from tests.conftest import random_checkpoint


def _sign(x):
    return "+" if x >= 0 else "-"


def brute_force(checkpoint: Checkpoint, signed: bool) -> dict:
    """Every motif by enumerating neuron tuples with itertools (the definitions, nothing clever)."""
    W = [layer.dense() for layer in checkpoint.layers]  # [out, in]
    w, out = checkpoint.widths, Counter()

    def add(motif, l, weights):
        if all(x != 0 for x in weights):
            out[motif, l, sign_label(motif, tuple(map(_sign, weights))) if signed else ""] += 1

    for l, M in enumerate(W):
        for i, j in itertools.product(range(w[l]), range(w[l + 1])):
            add("edge", l, [M[j, i]])
        for i in range(w[l]):
            for k, motif in ((2, "diverging"), (3, "diverging3")):
                for js in itertools.combinations(range(w[l + 1]), k):
                    add(motif, l, [M[j, i] for j in js])
        for j in range(w[l + 1]):
            for k, motif in ((2, "converging"), (3, "converging3")):
                for sources in itertools.combinations(range(w[l]), k):
                    add(motif, l, [M[j, i] for i in sources])
        for (i1, i2), (j1, j2) in itertools.product(itertools.combinations(range(w[l]), 2), itertools.combinations(range(w[l + 1]), 2)):
            add("bifan", l, [M[j1, i1], M[j2, i1], M[j1, i2], M[j2, i2]])
    for l in range(len(W) - 1):
        A, B = W[l], W[l + 1]
        for a, b, c in itertools.product(range(w[l]), range(w[l + 1]), range(w[l + 2])):
            add("chain", l, [A[b, a], B[c, b]])
        for a, c in itertools.product(range(w[l]), range(w[l + 2])):
            for b1, b2 in itertools.combinations(range(w[l + 1]), 2):
                add("biparallel", l, [A[b1, a], B[c, b1], A[b2, a], B[c, b2]])
    for l in range(len(W) - 2):
        for a, b, c, d in itertools.product(*(range(n) for n in w[l:l + 4])):
            add("chain3", l, [W[l][b, a], W[l + 1][c, b], W[l + 2][d, c]])
    return dict(out)


def _nonzero(counts: dict) -> dict:
    return {k: float(v[0]) for k, v in counts.items() if v[0] != 0}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("dense_products", [True, False])
def test_every_motif_matches_brute_force(seed, signed, dense_products, monkeypatch):
    if not dense_products:
        monkeypatch.setattr(motif_module, "DENSE_PRODUCT_ENTRIES", 0)
    # widths grow then shrink so that bifans are counted from both sides (MᵀM and MMᵀ)
    checkpoint = random_checkpoint([4, 6, 5, 3, 4], density=0.55, seed=seed)
    assert _nonzero(count_batch(Batch.of([checkpoint]), signed=signed)) == brute_force(checkpoint, signed)


def test_a_batch_counts_each_graph_as_alone():
    checkpoints = [random_checkpoint([5, 4, 6], density=0.5, seed=s) for s in range(4)]
    together = count_batch(Batch.of(checkpoints), signed=True)
    for b, checkpoint in enumerate(checkpoints):
        alone = count_batch(Batch.of([checkpoint]), signed=True)
        assert {k: v[b] for k, v in together.items()} == {k: v[0] for k, v in alone.items()}


def test_hand_counts():
    # 0 -> {0, 1, 2} and 1 -> {0, 1}; then every hidden neuron -> output 0
    first = np.array([[1, 1], [1, -1], [1, 0]], float)
    second = np.array([[1, 1, -1]], float)
    checkpoint = Checkpoint("r", 0, (Layer.from_dense("a", first), Layer.from_dense("b", second)))
    table = motifs(checkpoint, signed=False)
    got = {(row.layer, row.motif): row.count for row in table.itertuples()}
    assert got["0", "diverging"] == 3 + 1 and got["0", "converging"] == 2 and got["0", "bifan"] == 1
    assert got["1", "converging"] == 3 and got["1", "converging3"] == 1
    assert got["0-1", "chain"] == 5 and got["0-1", "biparallel"] == 3 + 1
    assert got["all", "converging"] == 5
    signed = motifs(checkpoint, signed=True, motifs=("chain",))
    chain = {row.sign: row.count for row in signed.itertuples() if row.layer == "0-1"}
    assert chain == {"++": 3, "+-": 1, "-+": 1, "--": 0}


def test_chain_pairs_count_connected_pairs():
    for seed in range(3):
        checkpoint = random_checkpoint([5, 4, 6, 3], density=0.4, seed=seed)
        counts = count_batch(Batch.of([checkpoint]), signed=True, chain_pairs=True, motifs=("chain",))
        for l in range(2):
            A, B = checkpoint.layers[l].dense(), checkpoint.layers[l + 1].dense()
            for s1, s2 in itertools.product("+-", "+-"):
                a = (A > 0) if s1 == "+" else (A < 0)
                b = (B > 0) if s2 == "+" else (B < 0)
                assert counts["chain", l, s1 + s2][0] == np.count_nonzero(b.astype(int) @ a.astype(int))
        unsigned = count_batch(Batch.of([checkpoint]), chain_pairs=True, motifs=("chain",))
        M = [layer.mask().astype(int) for layer in checkpoint.layers]
        assert unsigned["chain", 0, ""][0] == np.count_nonzero(M[1] @ M[0])


def test_chain3_pairs_count_connected_source_end_pairs():
    checkpoints = [random_checkpoint([5, 4, 6, 3, 4], density=0.35, seed=seed, run=f"r{seed}") for seed in range(3)]
    signed = count_batch(Batch.of(checkpoints), signed=True, chain_pairs=True, motifs=("chain3",))
    unsigned = count_batch(Batch.of(checkpoints), chain_pairs=True, motifs=("chain3",))
    for b, checkpoint in enumerate(checkpoints):
        W = [layer.dense() for layer in checkpoint.layers]
        w = checkpoint.widths
        for l in range(2):
            pairs = {}  # (a, d) -> sign types of the 3-paths a -> b -> c -> d
            for a_, b_, c_, d_ in itertools.product(*(range(n) for n in w[l:l + 4])):
                path = [W[l][b_, a_], W[l + 1][c_, b_], W[l + 2][d_, c_]]
                if all(x != 0 for x in path):
                    pairs.setdefault((a_, d_), set()).add("".join(map(_sign, path)))
            assert unsigned["chain3", l, ""][b] == len(pairs)
            for signs in itertools.product("+-", repeat=3):
                label = "".join(signs)
                assert signed["chain3", l, label][b] == sum(label in types for types in pairs.values())
    table = motifs(checkpoints[0], chain_pairs=True, samples=20, motifs=("chain3",))
    assert (table["method"] == "sampled").all() and (table["samples"] == 20).all()
    assert table.query("layer == 'all'")["count"].item() == sum(unsigned["chain3", l, ""][0] for l in range(2))


def test_a_graph_without_products_at_the_end_of_a_batch_takes_nothing_from_the_others():
    full = random_checkpoint([14, 16, 14], density=0.2, seed=4, run="a")  # sparse: the sparse product path
    empty = Checkpoint("b", 0, (full.layers[0], Layer.from_dense("l1", np.zeros((14, 16)))))
    motifs_ = ("bifan", "biparallel", "chain")
    alone = count_batch(Batch.of([full]), chain_pairs=True, motifs=motifs_)
    together = count_batch(Batch.of([full, empty]), chain_pairs=True, motifs=motifs_)
    for key in alone:
        assert together[key][0] == alone[key][0], key
    assert together["biparallel", 0, ""][1] == together["chain", 0, ""][1] == 0


def _layers(*dense):
    return Checkpoint("r", 0, tuple(Layer.from_dense(f"l{k}", np.array(d, float)) for k, d in enumerate(dense)))


def test_remove_dead_is_iterative():
    # input 0 -> h0 -> g0 -> out 0 lives. input 1 -> h1 -> g1, but g1 has no output: g1 dies, then h1, then
    # the synapse of input 1. h2 has an output (-> g0) but no input: it dies with its synapse.
    first = [[1, 0], [0, 1], [0, 0]]            # h0 <- in0, h1 <- in1, h2 <- nothing
    second = [[1, 0, 1], [0, 1, 0]]             # g0 <- h0, h2; g1 <- h1
    third = [[1, 0]]                            # out0 <- g0
    checkpoint = _layers(first, second, third)
    pruned, alive = remove_dead(Batch.of([checkpoint]))
    assert [len(s) for s in pruned.src] == [1, 1, 1]
    assert alive[0].tolist() == [True, False, True, False, False, True, False, True]
    table = motifs(checkpoint, prune_dead=True, motifs=("edge", "chain"))
    assert table[table.motif == "chain"]["count"].tolist() == [1, 1, 2]
    # nothing to remove: the same counts
    full = random_checkpoint([4, 5, 4], density=0.9, seed=1)
    assert motifs(full, prune_dead=True)["count"].tolist() == motifs(full)["count"].tolist()


@pytest.mark.parametrize("null", ["fixed", "bernoulli", "degree", "study"])
def test_a_network_that_dies_entirely(null):
    dead = _layers([[1, 0], [0, 1]], [[0, 0], [0, 0]])  # nothing reaches the outputs
    table = motifs(dead, null=null, prune_dead=True, signed=True, chain_pairs=True, samples=10)
    assert (table["count"] == 0).all() and (table["expected"] == 0).all() and (table["sd"] == 0).all()


def test_pruning_dead_neurons_shrinks_the_null():
    checkpoint = _layers([[1, 1, 0], [1, 0, 0], [0, 0, 0]], [[1, 1, 0]])
    alive = motifs(checkpoint, prune_dead=True, motifs=("diverging",))
    # live: inputs {0, 1}, hidden {0, 1}, output {0}; layer 0 keeps 3 of 4 live slots
    row = alive[alive.layer == "0"].iloc[0]
    assert row["expected"] == pytest.approx(2 * 3 * 2 / (4 * 3))


def _all_placements(n_in, n_out, m, m_neg):
    """Every placement of m synapses (m_neg of them negative) in an n_out x n_in layer."""
    for slots in itertools.combinations(range(n_in * n_out), m):
        for negative in itertools.combinations(range(m), m_neg):
            weight = np.zeros((n_out, n_in))
            for k, slot in enumerate(slots):
                weight[slot % n_out, slot // n_out] = -1 if k in negative else 1
            yield Checkpoint("r", 0, (Layer.from_dense("a", weight),))


def test_fixed_null_is_exact_against_enumeration():
    placements = list(_all_placements(2, 3, 4, 2))
    counts = [count_batch(Batch.of([c]), signed=True) for c in placements]
    table = motifs(placements[0], signed=True)
    for row in table[table.layer == "0"].itertuples():
        values = np.array([c[row.motif, 0, row.sign][0] for c in counts])
        assert row.expected == pytest.approx(values.mean(), abs=1e-12)
        assert row.sd == pytest.approx(values.std(), abs=1e-9)


def _check_against_samples(checkpoint, null, signed, chain_pairs=False, n=20_000):
    table = motifs(checkpoint, null=null, signed=signed, chain_pairs=chain_pairs, samples=400, seed=1)
    draws = _with_totals(count_batch(sample_null(Batch.of([checkpoint]), null, n, 7), signed=signed, chain_pairs=chain_pairs))
    worst = 0.0
    for row in table.itertuples():
        start = row.layer if row.layer == "all" else int(row.layer.split("-")[0])
        values = draws[row.motif, start, getattr(row, "sign", "")]
        mean, var = values.mean(), values.var()
        if row.method == "sampled":  # no closed form to check (chain3 pairs)
            continue
        if row.method == "exact":
            if row.sd == 0:
                assert var == 0 and mean == pytest.approx(row.expected)
                continue
            fourth = ((values - mean) ** 4).mean()
            z_var = (var - row.sd ** 2) / np.sqrt(max(fourth - var ** 2, 1e-12) / n)
            worst = max(worst, abs(z_var))
        z_mean = (mean - row.expected) / (max(row.sd, np.sqrt(var), 1e-9) / np.sqrt(n))
        worst = max(worst, abs(z_mean))
    return worst


@pytest.mark.parametrize("null", ["fixed", "bernoulli"])
@pytest.mark.parametrize("signed", [False, True])
def test_closed_form_mean_and_sd_match_20000_samples(null, signed):
    checkpoint = random_checkpoint([4, 5, 4, 3, 3], density=0.5, seed=1)
    assert _check_against_samples(checkpoint, null, signed) < 5


@pytest.mark.parametrize("signed", [False, True])
def test_chain_pairs_moments_match_samples(signed):
    # fixed: E exact (sd sampled); bernoulli: E and SD exact, the "all" rows with the cross-span term
    checkpoint = random_checkpoint([5, 6, 4, 4], density=0.3, seed=2)
    for null in ("fixed", "bernoulli"):
        assert _check_against_samples(checkpoint, null, signed, chain_pairs=True) < 5
    table = motifs(checkpoint, null="bernoulli", chain_pairs=True, samples=10)
    assert set(table[table.motif != "chain3"]["method"]) == {"exact"}
    assert set(table[table.motif == "chain3"]["method"]) == {"sampled"}


def test_exact_z_equals_sampled_z():
    checkpoint = random_checkpoint([5, 6, 5, 4], density=0.45, seed=3)
    exact = motifs(checkpoint)
    sampled = motifs(checkpoint, sample=True, samples=20_000, seed=5)
    assert (sampled["method"] == "sampled").all() and (exact["method"] == "exact").all()
    finite = np.isfinite(exact["z"])
    assert np.allclose(exact["z"][finite], sampled["z"][finite], atol=0.06, rtol=0.03)


def test_curveball_keeps_degrees_and_is_uniform():
    weight = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 1]], float)  # 3 targets x 4 sources
    layer = Layer.from_dense("a", weight)
    src, dst = curveball(layer.src, layer.dst, 4, 3, 6000, np.random.default_rng(1), chains=6000, burn_in=30, thin=1)
    masks = np.zeros((6000, 3, 4), int)
    masks[np.repeat(np.arange(6000), layer.edges), dst.ravel(), src.ravel()] = 1
    assert (masks.sum(1) == weight.sum(0)).all() and (masks.sum(2) == weight.sum(1)).all()
    seen = Counter(m.tobytes() for m in masks)
    # every matrix with these margins, by enumeration
    allowed = [m for m in (np.array(bits).reshape(3, 4) for bits in itertools.product((0, 1), repeat=12))
               if (m.sum(0) == weight.sum(0)).all() and (m.sum(1) == weight.sum(1)).all()]
    assert len(allowed) > 5 and len(seen) == len(allowed)
    assert chisquare([seen[m.tobytes()] for m in allowed]).pvalue > 1e-3


def test_degree_null_fixes_degree_motifs():
    checkpoint = random_checkpoint([6, 8, 7, 5], density=0.4, seed=4)
    table = motifs(checkpoint, null="degree", samples=200, seed=2)
    fixed = table[table.motif.isin(["edge", "diverging", "converging", "chain", "diverging3", "converging3"])]
    assert (fixed["sd"] == 0).all() and np.allclose(fixed["count"], fixed["expected"])
    assert (table["samples"] == 200).all() and (table["method"] == "sampled").all()
    assert (table[table.motif == "bifan"]["sd"] > 0).any()


def test_study_null_keeps_every_live_neuron():
    checkpoint = _layers([[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]], [[1, 0, 0, 1], [0, 1, 0, 0]])
    draws = sample_null(Batch.of([checkpoint]), "study", 300, 3)
    for l, layer in enumerate(checkpoint.layers):
        live_src, live_dst = set(layer.src.tolist()), set(layer.dst.tolist())
        for b in range(300):
            pick = draws.sid[l] == b
            assert pick.sum() == layer.edges
            assert set(draws.src[l][pick].tolist()) == live_src and set(draws.dst[l][pick].tolist()) == live_dst
            assert len(set(zip(draws.src[l][pick].tolist(), draws.dst[l][pick].tolist()))) == layer.edges
    table = motifs(checkpoint, null="study", samples=50)
    assert (table["null"] == "study").all()


# ---- the study's null (Zahn et al.'s randomPruning) ---------------------------------------------------

def _study_port(rng, src, dst):
    """The study's procedure written as its authors wrote it, loop by loop on a dense 0/1 matrix (rows =
    live sources, columns = live targets), with the same draws as netarchive's: one ``rng.random()`` per
    slot for the uniform synapses, per row, per column, per full row or column."""
    sources, targets = sorted(set(src)), sorted(set(dst))
    s, t, m = len(sources), len(targets), len(src)
    mask = np.zeros((s, t), int)
    uniform = m - s - t
    keys = rng.random(s * t)
    for slot in np.argsort(keys)[:uniform]:
        mask[slot // t, slot % t] = 1
    extra = 0
    for i in range(s):  # for each row place a random 1
        u = rng.random()
        zeros = np.nonzero(mask[i] == 0)[0]
        if len(zeros):
            mask[i, zeros[int(u * len(zeros))]] = 1
        else:
            extra += 1
    for j in range(t):  # for each column place a random 1
        u = rng.random()
        zeros = np.nonzero(mask[:, j] == 0)[0]
        if len(zeros):
            mask[zeros[int(u * len(zeros))], j] = 1
        else:
            extra += 1
    for _ in range(extra):  # full rows or columns: a random free slot anywhere
        zeros = np.nonzero(mask.ravel() == 0)[0]
        mask.flat[zeros[int(rng.random() * len(zeros))]] = 1
    return {(sources[i], targets[j]) for i, j in zip(*np.nonzero(mask))}


@pytest.mark.parametrize("shape, density, seed", [((12, 7), 0.35, 1), ((10, 2), 0.9, 2), ((6, 9), 0.6, 3)])
def test_study_null_is_the_authors_procedure_draw_by_draw(shape, density, seed):
    layer = random_checkpoint(shape, density=density, seed=seed).layers[0]
    src, dst = layer.src.astype(np.int64), layer.dst.astype(np.int64)
    assert len(src) >= len(set(src)) + len(set(dst))  # the procedure, not the fallback
    out_s, out_d = motif_module._study_layer(np.random.default_rng(seed), src, dst, 40)
    port = np.random.default_rng(seed)
    full_rows = 0
    for k in range(40):
        expected = _study_port(port, src.tolist(), dst.tolist())
        assert set(zip(out_s[k].tolist(), out_d[k].tolist())) == expected
        full_rows += len(expected) == len(src)
    assert full_rows == 40  # every draw keeps the layer's m synapses


def _study_distribution(s, t, m):
    """The exact distribution of the study's null on an s x t layer of m synapses, by enumerating every
    uniform set, every row choice, every column choice and every placement of a full line's synapse."""
    from fractions import Fraction

    out = Counter()

    def extras(mask, count, weight):
        if count == 0:
            out[frozenset(mask)] += weight
            return
        free = [slot for slot in itertools.product(range(s), range(t)) if slot not in mask]
        for slot in free:
            extras(mask | {slot}, count - 1, weight / len(free))

    def lines(mask, todo, count, weight):
        if not todo:
            return extras(mask, count, weight)
        kind, k = todo[0]
        free = [(k, j) for j in range(t) if (k, j) not in mask] if kind == "row" else \
               [(i, k) for i in range(s) if (i, k) not in mask]
        if not free:
            return lines(mask, todo[1:], count + 1, weight)
        for slot in free:
            lines(mask | {slot}, todo[1:], count, weight / len(free))

    slots = list(itertools.product(range(s), range(t)))
    uniform = list(itertools.combinations(slots, m - s - t))
    todo = [("row", i) for i in range(s)] + [("column", j) for j in range(t)]
    for chosen in uniform:
        lines(frozenset(chosen), todo, 0, Fraction(1, len(uniform)))
    return out


@pytest.mark.parametrize("s, t, m", [(2, 3, 5), (3, 3, 7), (2, 4, 7), (4, 2, 7)])
def test_study_null_has_the_exact_distribution_of_the_procedure(s, t, m):
    exact = _study_distribution(s, t, m)
    assert sum(exact.values()) == 1 and all(len(mask) == m for mask in exact)
    # a layer of those live sizes: a cover of the s x t slots with m synapses
    slots = sorted(next(iter(exact)))
    weight = np.zeros((t, s))
    for i, j in slots:
        weight[j, i] = 1.0
    checkpoint = Checkpoint("r", 0, (Layer.from_dense("a", weight),))
    n = 20_000
    draws = sample_null(Batch.of([checkpoint]), "study", n, 11)
    seen = Counter(frozenset(zip(draws.src[0][draws.sid[0] == k].tolist(), draws.dst[0][draws.sid[0] == k].tolist()))
                   for k in range(n))
    assert set(seen) <= set(exact)
    masks = sorted(exact, key=sorted)
    assert chisquare([seen[mask] for mask in masks], [float(exact[mask]) * n for mask in masks]).pvalue > 1e-3
    # and the z-scores' mean and SD: the enumerated moments, within sampling error
    bifans = {mask: sum(1 for (a, b) in itertools.combinations(range(s), 2) for (c, d) in itertools.combinations(range(t), 2)
                        if {(a, c), (a, d), (b, c), (b, d)} <= mask) for mask in exact}
    mean = float(sum(p * bifans[mask] for mask, p in exact.items()))
    sd = float(sum(p * (bifans[mask] - mean) ** 2 for mask, p in exact.items())) ** 0.5
    row = motifs(checkpoint, null="study", samples=4000, seed=5, motifs=("bifan",)).query("layer == '0'").iloc[0]
    assert abs(row.expected - mean) < 5 * sd / 4000 ** 0.5 + 1e-12
    assert row.sd == pytest.approx(sd, rel=0.1, abs=1e-12) and row.method == "sampled"


def test_study_null_falls_back_to_an_edge_cover_and_says_so():
    # layer 0: 3 live sources, 2 live targets, 4 synapses (< 5): the procedure cannot run; layer 1 can
    checkpoint = _layers([[1, 1, 0], [0, 1, 1]], [[1, 1], [1, 1], [1, 0]])
    table = motifs(checkpoint, null="study", samples=30, motifs=("edge", "diverging", "chain"))
    method = dict(zip(table.layer + " " + table.motif, table.method))
    assert method["0 diverging"] == method["all diverging"] == method["0-1 chain"] == "sampled; layer 0: edge cover (m < s + t)"
    assert method["1 diverging"] == "sampled"
    assert motif_module.study_fallback_layers(Batch.of([checkpoint])) == [0]


def test_study_null_counts_the_live_network():
    dead = _layers([[1, 0], [0, 1], [1, 1]], [[1, 1, 0], [0, 0, 0]])  # hidden 2 has no output: a ghost chain
    study = motifs(dead, null="study", samples=20, motifs=("edge", "diverging"))
    pruned = motifs(dead, null="fixed", prune_dead=True, motifs=("edge", "diverging"))
    assert study["count"].tolist() == pruned["count"].tolist()


def test_repeatable_with_a_seed():
    checkpoint = random_checkpoint([5, 6, 5], density=0.4, seed=6)
    a = motifs(checkpoint, null="degree", samples=50, seed=3)
    b = motifs(checkpoint, null="degree", samples=50, seed=3)
    assert a.equals(b)


def test_results_do_not_depend_on_batch_size(monkeypatch):
    checkpoints = [random_checkpoint([5, 6, 5], density=0.4, seed=s, run=f"r{s}") for s in range(5)]
    exact, sampled = motifs(checkpoints, signed=True), motifs(checkpoints, null="degree", samples=40, seed=3)
    monkeypatch.setattr(motif_module, "BATCH_SYNAPSES", 30)  # a few graphs per batch
    pd.testing.assert_frame_equal(motifs(checkpoints, signed=True), exact)
    pd.testing.assert_frame_equal(motifs(checkpoints, null="degree", samples=40, seed=3), sampled)


def test_participation_from_degrees():
    checkpoint = random_checkpoint([4, 5, 3], density=0.6, seed=7)
    part = participation(checkpoint)
    adjacency = (checkpoint.adjacency() != 0).astype(int)
    k_in, k_out = np.asarray(adjacency.sum(0)).ravel(), np.asarray(adjacency.sum(1)).ravel()
    assert part["fan_in_pairs"].tolist() == (k_in * (k_in - 1) // 2).tolist()
    assert part["chains_through"].tolist() == (k_in * k_out).tolist()
    assert part["fan_out_pairs"].sum() == motifs(checkpoint, motifs=("diverging",)).query("layer == 'all'")["count"].iloc[0]


def test_bad_options():
    checkpoint = random_checkpoint([3, 3], seed=0)
    with pytest.raises(InputError, match="unknown null"):
        motifs(checkpoint, null="erdos")
    with pytest.raises(InputError, match="unknown motif"):
        motifs(checkpoint, motifs=("triangle",))
    with pytest.raises(InputError, match="samples"):
        motifs(checkpoint, null="degree", samples=1)


def test_columns():
    table = motifs(random_checkpoint([3, 4, 3], seed=1, run="x", level=2))
    assert list(table.columns) == ["run", "level", "sparsity", "layer", "motif", "count", "expected", "sd", "z", "null", "samples", "method"]
    assert set(table.motif) == set(MOTIFS) - {"chain3"}
    assert (table.run == "x").all() and (table.level == 2).all()


# ---- command line -------------------------------------------------------------------------------

@pytest.fixture
def filled(store_path):
    with netarchive.open(store_path) as archive:
        for run in range(3):
            for level in range(2):
                archive.write(random_checkpoint([5, 6, 6, 3], density=0.6 - 0.2 * level, seed=10 * run + level, run=f"s{run}", level=level))
    return store_path


def _invoke(store, *args):
    return CliRunner().invoke(cli, ["--store", str(store), *args])


def test_cli_table(filled, tmp_path):
    result = _invoke(filled, "query", "motifs", "--runs", "s0,s1", "--level", "1", "--format", "csv", "-o", str(tmp_path / "m.csv"))
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "m.csv")
    assert set(table.run) == {"s0", "s1"} and set(table.level) == {1}
    assert "sign" not in table.columns
    signed = _invoke(filled, "query", "motifs", "--run", "s2", "--signed", "--totals", "--motif", "chain", "--format", "json")
    assert signed.exit_code == 0 and '"sign": "+-"' in signed.output and '"layer": "0-1"' not in signed.output


def test_cli_write_back(filled):
    result = _invoke(filled, "query", "motifs", "--run", "s0", "--level", "0", "--write", "--motif", "edge")
    assert result.exit_code == 0, result.output
    with netarchive.open(filled, read_only=True) as archive:
        expected = participation(archive.checkpoint("s0", 0))
    assert expected["chains_through"].sum() > 0
    out = _invoke(filled, "query", "cypher", "MATCH (n:Neuron) WHERE n.chains_through IS NOT NULL RETURN sum(n.chains_through) AS s", "--format", "csv")
    assert out.exit_code == 0, out.output
    assert int(float(out.output.split()[-1])) == expected["chains_through"].sum()


def test_cli_plots(filled, tmp_path):
    one = _invoke(filled, "plot", "motifs", "--runs", "s0,s1,s2", "--level", "0", "-o", str(tmp_path / "z.png"))
    assert one.exit_code == 0, one.output and (tmp_path / "z.png").stat().st_size > 0
    over = _invoke(filled, "plot", "motifs", "--runs", "s0,s1,s2", "--over-sparsity", "-o", str(tmp_path / "s.png"))
    assert over.exit_code == 0, over.output and (tmp_path / "s.png").exists()


def test_cli_errors(filled, tmp_path):
    assert "give --run" in _invoke(filled, "query", "motifs").output
    missing = _invoke(filled, "query", "motifs", "--run", "nope")
    assert missing.exit_code == 1 and "no run named 'nope'" in missing.output
    no_level = _invoke(filled, "plot", "motifs", "--runs", "s0", "-o", str(tmp_path / "x.png"))
    assert no_level.exit_code == 1 and "--level" in no_level.output
