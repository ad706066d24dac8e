"""Motifs of convolutional and residual networks on their channel graph: channel pairs and their signs, the
spans motif chains follow through additions and concatenations, counts against itertools, and the SD of
the whole-network totals against an exhaustive enumeration of the null."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from netarchive.analysis.motif_chains import channel_pairs, motif_spans
from netarchive.analysis.motifs import motifs, participation
from netarchive.errors import InputError
from netarchive.loaders.traced import from_module
from netarchive.model import Checkpoint, Conv, Group, Layer, Op
from tests import models
from tests.test_traced import prune_randomly


def pair_sets(model, names):
    """{tensor name: set of (input channel, output channel) with a surviving kernel weight}, by itertools."""
    modules = dict(model.named_modules())
    out = {}
    for name in names:
        weight = modules[name.removesuffix(".weight")].weight.detach().numpy()
        groups = getattr(modules[name.removesuffix(".weight")], "groups", 1)
        per_group_out = weight.shape[0] // groups
        out[name] = {(o // per_group_out * weight.shape[1] + i, o)
                     for o, i in itertools.product(range(weight.shape[0]), range(weight.shape[1]))
                     if np.any(weight[o, i] != 0)}
    return out


def counts(table, motif):
    return dict(zip(table[table.motif == motif].layer, table[table.motif == motif]["count"]))


def test_a_channel_pair_is_connected_by_any_kernel_weight_and_signed_by_their_sum():
    kernel = np.zeros((2, 2, 2, 2))
    kernel[0, 0, 0, 0], kernel[0, 0, 1, 1] = 0.5, -1.0  # sum -0.5: inhibitory
    kernel[1, 0, 0, 1], kernel[1, 0, 1, 0] = 0.5, -0.5  # sum 0: counted excitatory
    kernel[1, 1, 1, 1] = 2.0
    conv = Layer.from_dense("c.weight", kernel, conv=Conv(kernel=(2, 2), in_spatial=(3, 3)), source=0, target=1)
    pairs = channel_pairs(conv)
    assert sorted(zip(pairs.src.tolist(), pairs.dst.tolist(), pairs.w.tolist())) == [(0, 0, -0.5), (0, 1, 0.0), (1, 1, 2.0)]
    net = Checkpoint("r", 0, (conv,), groups=(Group("input", 2, (3, 3)), Group("c", 2, (2, 2))),
                     program=(Op("input"), Op("layer", (0,), 1, 0)))
    signed = motifs(net, signed=True, motifs=("edge", "converging"))
    edges = dict(zip(signed[(signed.motif == "edge") & (signed.layer == "0")].sign, signed[(signed.motif == "edge") & (signed.layer == "0")]["count"]))
    assert edges == {"+": 2, "-": 1}
    assert signed[(signed.motif == "converging") & (signed.layer == "0")].set_index("sign")["count"].to_dict() == {"++": 1, "+-": 0, "--": 0}


def test_a_cnn_without_skips_is_disjoint_chains_counted_as_chains():
    model = prune_randomly(models.cnn(), density=0.5, seed=2)
    net = from_module(model, run="r", level=3, input_shape=(1, 8, 8))
    spans, disjoint = motif_spans(net)
    assert disjoint and [span.layers for span in spans] == [(0, 1), (2,)]  # the flatten ends the chain
    sets = pair_sets(model, net.layer_names)
    # the same chains built here from the pair sets alone
    def chain(names):
        layers = []
        for name in names:
            layer = next(l for l in net.layers if l.name == name)
            src, dst = zip(*sorted(sets[name])) if sets[name] else ((), ())
            layers.append(Layer(name, layer.inputs, layer.outputs, np.array(src), np.array(dst), np.ones(len(src))))
        return Checkpoint("r", 3, tuple(layers))
    convs, head = motifs(chain(["conv1.weight", "conv2.weight"])), motifs(chain(["fc.weight"]))
    table = motifs(net)
    assert (table.sparsity == net.sparsity).all()
    for motif in ("edge", "diverging", "converging", "bifan"):
        got = counts(table, motif)
        assert (got["0"], got["1"], got["2"]) == (counts(convs, motif)["0"], counts(convs, motif)["1"], counts(head, motif)["0"])
        whole = table[(table.motif == motif) & (table.layer == "all")].iloc[0]
        parts = [t[(t.motif == motif) & (t.layer == "all")].iloc[0] for t in (convs, head)]
        assert whole["count"] == sum(p["count"] for p in parts)
        assert whole.expected == pytest.approx(sum(p.expected for p in parts))
        assert whole.sd == pytest.approx(np.sqrt(sum(p.sd ** 2 for p in parts)))
    assert counts(table, "chain") == {"0-1": counts(convs, "chain")["0-1"], "all": counts(convs, "chain")["0-1"]}
    assert set(table.method) == {"exact"}


def test_resnet_chains_continue_through_the_addition_and_count_as_itertools_does():
    model = prune_randomly(models.basic_block(), density=0.4, seed=5)
    net = from_module(model, run="r", level=0, input_shape=(3, 8, 8))
    spans, disjoint = motif_spans(net)
    # stem -> conv1 -> conv2; stem -> shortcut; conv2 and shortcut end in the addition, then the flatten
    assert not disjoint and [s.layers for s in spans] == [(0,), (1,), (2,), (3,), (4,), (0, 1), (0, 3), (1, 2), (0, 1, 2)]
    sets = pair_sets(model, net.layer_names)
    stem, conv1, conv2, shortcut = (sets[name] for name in net.layer_names[:4])

    def two_paths(first, second):
        return sum(1 for (i, j), (k, l) in itertools.product(first, second) if j == k)

    table = motifs(net, motifs=("chain", "chain3", "biparallel", "edge"))
    expected = {"0-1": two_paths(stem, conv1), "0-3": two_paths(stem, shortcut), "1-2": two_paths(conv1, conv2)}
    assert counts(table, "chain") == {**expected, "all": sum(expected.values())}
    three = sum(1 for (a, b), (c, d), (e, f) in itertools.product(stem, conv1, conv2) if b == c and d == e)
    assert counts(table, "chain3") == {"0-2": three, "all": three}
    biparallel = sum(1 for (a, b1), (a2, b2) in itertools.combinations(sorted(stem), 2) if a == a2
                     for c in range(8) if (b1, c) in shortcut and (b2, c) in shortcut)
    assert counts(table, "biparallel")["0-3"] == biparallel
    assert counts(table, "edge") == {str(l): len(sets[name]) for l, name in enumerate(net.layer_names)} | {"all": sum(map(len, sets.values()))}
    chain_total = table[(table.motif == "chain") & (table.layer == "all")].iloc[0]
    spans_rows = table[(table.motif == "chain") & (table.layer != "all")]
    assert chain_total.expected == pytest.approx(spans_rows.expected.sum())
    assert chain_total.method == "exact" and chain_total.sd == pytest.approx(np.sqrt((spans_rows.sd ** 2).sum()))
    assert set(spans_rows.method) == {"exact"}
    three_total = table[(table.motif == "chain3") & (table.layer == "all")].iloc[0]
    assert three_total.method == "exact"  # one span: nothing to covary with
    bernoulli = motifs(net, null="bernoulli", motifs=("chain",), samples=50).set_index("layer")
    assert bernoulli.method["all"] == "E exact, sd sampled" and bernoulli.samples["all"] == 50


class Concatenated(nn.Module):
    """x -> a (2 channels) and b (1 channel); c reads cat([a, b]) (3 channels): c's inputs 0-1 are a's."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(1, 2, 1), nn.Conv2d(1, 1, 1), nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return self.c(torch.relu(torch.cat([self.a(x), self.b(x)], dim=1)))


def test_through_a_concatenation_the_next_layer_is_taken_on_the_channels_that_come_from_the_first():
    model = Concatenated().eval()
    with torch.no_grad():
        model.a.weight[:] = torch.tensor([1.0, 1.0]).reshape(2, 1, 1, 1)
        model.b.weight[:] = 1.0
        model.c.weight[:] = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]).reshape(2, 3, 1, 1)  # pairs 0→0, 2→0, 0→1, 1→1
    net = from_module(model, run="r", level=0, input_shape=(1, 3, 3))
    spans, disjoint = motif_spans(net)
    assert not disjoint
    pairs = {span.layers: span for span in spans if len(span.layers) == 2}
    assert set(pairs) == {(0, 2), (1, 2)}
    assert pairs[0, 2].pieces == ((0, -1), (2, 0)) and pairs[0, 2].chain.widths == (1, 2, 2)
    assert pairs[1, 2].pieces == ((1, -1), (2, 2)) and pairs[1, 2].chain.widths == (1, 1, 2)
    table = motifs(net, motifs=("chain",))
    rows = table.set_index("layer")
    assert rows["count"].to_dict() == {"0-2": 3, "1-2": 1, "all": 4}  # via a's channels 0, 1; via b's (c's input 2)
    # fixed null: E = m_first · m_second / middle channels, the second layer's synapses from those channels
    assert rows.expected["0-2"] == pytest.approx(2 * 3 / 2) and rows.expected["1-2"] == pytest.approx(1 * 1 / 1)


def tiny_residual(fc1, fc2, out):
    """x (1) -fc1-> h (2); g = fc2(h) (2); out reads h + g (2) -> 1."""
    layers = (Layer.from_dense("fc1.weight", fc1, source=0, target=1), Layer.from_dense("fc2.weight", fc2, source=1, target=2),
              Layer.from_dense("out.weight", out, source=3, target=4))
    groups = (Group("input", 1), Group("fc1", 2), Group("fc2", 2), Group("add", 2), Group("out", 1))
    program = (Op("input"), Op("layer", (0,), 1, 0), Op("layer", (1,), 2, 1), Op("add", (1, 2), 3), Op("layer", (3,), 4, 2))
    return Checkpoint("r", 0, layers, groups=groups, program=program)


def chain_total(fc1, fc2, out):
    """Chains of the tiny residual network by itertools: fc1→fc2, fc1→out (through the addition), fc2→out."""
    a, b, c = ({(i, o) for o, i in zip(*np.nonzero(w))} for w in (fc1, fc2, out))
    return sum(1 for first, second in ((a, b), (a, c), (b, c)) for (i, j), (k, l) in itertools.product(first, second) if j == k)


def null_networks(shape, m, null):
    """Every mask of ``shape`` a null can draw with its probability: ``fixed``, exactly m synapses placed
    uniformly; ``bernoulli``, each slot kept with probability m / slots."""
    slots = int(np.prod(shape))
    for bits in itertools.product([0, 1], repeat=slots):
        k = sum(bits)
        if null == "fixed" and k != m:
            continue
        p = m / slots
        weight = 1 / len(list(itertools.combinations(range(slots), m))) if null == "fixed" else p ** k * (1 - p) ** (slots - k)
        yield np.array(bits, dtype=float).reshape(shape), weight


@pytest.mark.parametrize("null", ["fixed", "bernoulli"])
def test_whole_network_sd_of_overlapping_spans_matches_the_enumerated_null(null):
    fc1, fc2, out = np.array([[1.0], [0.0]]), np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([[1.0, 0.0]])
    net = tiny_residual(fc1, fc2, out)
    totals, weights = [], []
    for (a, pa), (b, pb), (c, pc) in itertools.product(null_networks((2, 1), 1, null), null_networks((2, 2), 2, null),
                                                      null_networks((1, 2), 1, null)):
        totals.append(chain_total(a, b, c))
        weights.append(pa * pb * pc)
    totals, weights = np.array(totals, dtype=float), np.array(weights)
    mean = float(weights @ totals)
    sd = float(np.sqrt(weights @ (totals - mean) ** 2))
    table = motifs(net, null=null, motifs=("chain",), samples=8000, seed=1)
    row = table[table.layer == "all"].iloc[0]
    assert row["count"] == chain_total(fc1, fc2, out) == 4
    assert row.expected == pytest.approx(mean, abs=1e-12)  # exact: the sum of the spans' closed forms
    if null == "fixed":  # chains of different spans do not covary when every layer's count is fixed
        assert row.sd == pytest.approx(sd, abs=1e-12) and row.method == "exact"
    else:  # fc1 feeds two spans, out closes two: their counts covary (3.875 against 2.375)
        assert row.sd == pytest.approx(sd, rel=0.04) and row.method == "E exact, sd sampled"  # joint draws
        assert row.sd ** 2 > 1.5 * (table[table.layer != "all"].sd ** 2).sum()


def test_chain_only_options_are_refused_for_other_networks():
    net = tiny_residual(np.ones((2, 1)), np.ones((2, 2)), np.ones((1, 2)))
    with pytest.raises(InputError, match="--prune-dead.*plain chains"):
        motifs(net, prune_dead=True)
    with pytest.raises(InputError, match="plain chains"):
        participation(net)
    with pytest.raises(InputError, match=r"--null study.*MLPs.*use --null fixed, bernoulli or degree"):
        motifs(net, null="study")  # the study's null lives on the live neurons of its MLPs


def test_chain3_pairs_of_a_residual_network_are_the_connected_pairs_of_its_3_paths():
    """--chain-pairs on chain3 (the study's third-order chain) outside chains: (input, output) pairs joined by
    an fc1 → fc2 → out path through the addition, against the boolean product of the masks."""
    rng = np.random.default_rng(2)
    fc1, fc2, out = ((rng.random(shape) < 0.5).astype(float) for shape in ((3, 2), (3, 3), (2, 3)))
    assert ((out @ fc2 @ fc1) > 0).sum() == 2 < (out @ fc2 @ fc1).sum() == 5  # pairs, not paths
    layers = (Layer.from_dense("fc1.weight", fc1, source=0, target=1), Layer.from_dense("fc2.weight", fc2, source=1, target=2),
              Layer.from_dense("out.weight", out, source=3, target=4))
    groups = (Group("input", 2), Group("fc1", 3), Group("fc2", 3), Group("add", 3), Group("out", 2))
    program = (Op("input"), Op("layer", (0,), 1, 0), Op("layer", (1,), 2, 1), Op("add", (1, 2), 3), Op("layer", (3,), 4, 2))
    net = Checkpoint("r", 0, layers, groups=groups, program=program)
    rows = motifs(net, chain_pairs=True, motifs=("chain3",), samples=20).set_index("layer")
    assert rows.loc["0-2", "count"] == rows.loc["all", "count"] == int(((out @ fc2 @ fc1) > 0).sum())
    assert (rows.method == "sampled").all()
