"""Components, percolation, degrees and thresholds of convolutional and residual networks: the channel graph
against itertools, the unrolled graph against networkx on a Toeplitz construction written here, and a
residual network worked by hand."""
from __future__ import annotations

import dataclasses
import itertools
from collections import Counter

import networkx as nx
import numpy as np
import pytest
import torch

from netarchive.analysis import components as C
from netarchive.analysis import degrees as D
from netarchive.analysis import percolation as P
from netarchive.analysis import spanning
from netarchive.analysis.graphs import graph
from netarchive.errors import InputError
from netarchive.loaders.traced import from_module
from netarchive.model import Checkpoint, Group, Layer, Op
from tests import models
from tests.test_traced import prune_randomly

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# --- a residual network worked by hand --------------------------------------------------------------------

def hand_residual() -> Checkpoint:
    """x (2) -fc1-> h (3); g = fc2(h) (3); s = h + g (3); o = out(s) (1), four synapses:
    x0→h0 (5), h0→g1 (4), s1→o0 (3), x1→h2 (2). Neurons: x 0-1, h 2-4, g 5-7, s 8-10, o 11."""
    fc1 = Layer.from_dense("fc1.weight", np.array([[5.0, 0], [0, 0], [0, 2.0]]), source=0, target=1)
    fc2 = Layer.from_dense("fc2.weight", np.array([[0, 0, 0], [4.0, 0, 0], [0, 0, 0]]), source=1, target=2)
    out = Layer.from_dense("out.weight", np.array([[0, 3.0, 0]]), source=3, target=4)
    groups = (Group("input", 2), Group("fc1", 3), Group("fc2", 3), Group("add", 3), Group("out", 1))
    program = (Op("input"), Op("layer", (0,), 1, 0), Op("layer", (1,), 2, 1), Op("add", (1, 2), 3), Op("layer", (3,), 4, 2))
    return Checkpoint("r", 0, (fc1, fc2, out), groups=groups, program=program)


def test_residual_connections_are_permanent_edges_of_the_curve():
    # state 0: clusters {h_i, g_i, s_i} of 3 and x0, x1, o0 alone; then x0→h0, h0→g1, s1→o0, x1→h2 merge
    curve = P.percolation(hand_residual(), "descending", points=5)
    assert curve.edges_kept.tolist() == [0, 1, 2, 3, 4]
    assert (curve.giant_fraction * 12).round(9).tolist() == [3, 4, 7, 8, 8]
    assert (curve.second_fraction * 12).round(9).tolist() == [3, 3, 3, 3, 4]
    assert curve.components.tolist() == [6, 5, 4, 3, 2]
    assert curve.mean_cluster_size.to_numpy() == pytest.approx([21 / 9, 20 / 8, 11 / 5, 10 / 4, 16 / 4])
    assert (curve.graph == "channel").all() and (curve.connections == 6).all()
    ascending = P.percolation(hand_residual(), "ascending", points=5)
    assert (ascending.giant_fraction * 12).round(9).tolist() == [3, 4, 4, 7, 8]


def test_residual_components_reachability_degrees_and_thresholds_by_hand():
    net = hand_residual()
    row = C.components(net).iloc[0]
    assert (row.components, row.giant_fraction, row.isolated, row.connections) == (2, 8 / 12, 0, 6)
    assert (row.inputs_connected, row.outputs_connected) == (0.5, 1.0)  # x0 → h0 → g1 → s1 → o0; x1 ends at s2
    assert C.component_labels(net).tolist() == [0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0]
    table = D.degrees(net)
    assert table.degree.tolist() == [1, 1, 2, 0, 1, 0, 1, 0, 0, 1, 0, 1]  # connections are no synapses
    assert table.group.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4]
    thresholds = P.thresholds(net, samples=2).iloc[0]
    assert thresholds.p_c_molloy_reed == pytest.approx((8 / 12) / (10 / 12 - 8 / 12))  # = 4
    # group matrix: 2/√(2·3) between input and fc1, 1/3 between fc1 and fc2, 1/√3 between add and out
    assert thresholds.p_c_branching == pytest.approx(3 / np.sqrt(7))
    assert np.isnan(thresholds.p_c_seed)
    # robustness: inputs_connected follows the real data flow, through the addition
    from netarchive.analysis.robustness import robustness

    x = np.eye(2, dtype=np.float32)
    curve = robustness(net, x, np.array([0, 0]), "descending", points=5)
    assert curve.inputs_connected.tolist() == [0, 0, 0, 0.5, 0.5]
    assert (curve.giant_fraction * 12).round(9).tolist() == [3, 4, 7, 8, 8]


# --- the channel graph against itertools ------------------------------------------------------------------

BLOCK_GROUPS = [3, 4, 8, 8, 8, 8, 8, 3]  # input, stem, conv1, conv2, shortcut, add, flatten, head
BLOCK_LAYERS = {"stem.weight": (0, 1), "conv1.weight": (1, 2), "conv2.weight": (2, 3), "shortcut.0.weight": (1, 4),
                "head.2.weight": (6, 7)}
BLOCK_CONNECTIONS = [(3, 5), (4, 5), (5, 6)]  # conv2 + shortcut -> add (identity), add -> flatten (1x1: c -> c)


def block(seed=3, density=0.5):
    model = prune_randomly(models.basic_block(), density=density, seed=seed)
    return model, from_module(model, run="r", level=0, input_shape=(3, 4, 4))


def block_weights(model):
    return {name: module.weight.detach().numpy() for name, module in model.named_modules()
            if hasattr(module, "weight") and module.weight is not None and name + ".weight" in BLOCK_LAYERS}


def channel_graph_by_hand(model):
    """Every surviving kernel weight of the pruned module as (|w|, src, dst, ky, kx) over global channel
    indices, and the identity connections, enumerated with itertools from the tensors themselves."""
    offset = np.concatenate([[0], np.cumsum(BLOCK_GROUPS)])
    synapses = []
    for name, weight in block_weights(model).items():
        source, target = BLOCK_LAYERS[name + ".weight"]
        kernel = weight.reshape(weight.shape[0], weight.shape[1], *(weight.shape[2:] or (1, 1)))
        for o, i, ky, kx in itertools.product(*map(range, kernel.shape)):
            if kernel[o, i, ky, kx] != 0:
                synapses.append((abs(float(kernel[o, i, ky, kx])), offset[source] + i, offset[target] + o,
                                 ky if weight.ndim == 4 else -1, kx if weight.ndim == 4 else -1))
    links = [(offset[a] + c, offset[b] + c) for a, b in BLOCK_CONNECTIONS for c in range(8)]
    return int(offset[-1]), synapses, links


def networkx_state(neurons, edges, links):
    graph_ = nx.Graph()
    graph_.add_nodes_from(range(neurons))
    graph_.add_edges_from(edges)
    graph_.add_edges_from(links)
    sizes = sorted((len(c) for c in nx.connected_components(graph_)), reverse=True)
    s1, s2 = sizes[0], (sizes[1] if len(sizes) > 1 else 0)
    finite = neurons - s1
    return [s1 / neurons, s2 / neurons, len(sizes), (sum(s * s for s in sizes) - s1 * s1) / finite if finite else 0.0]


def test_channel_graph_of_a_resnet_block_is_every_kernel_weight_and_the_identity_connections():
    model, net = block()
    neurons, synapses, links = channel_graph_by_hand(model)
    g = graph(net)
    assert (g.neurons, g.edges, g.connections) == (neurons, len(synapses), len(links))
    assert Counter(zip(g.src.tolist(), g.dst.tolist())) == Counter((s, d) for _, s, d, _, _ in synapses)
    assert sorted(zip(g.link_src.tolist(), g.link_dst.tolist())) == sorted(links)
    table = D.degrees(net)
    ends = Counter(s for _, s, _, _, _ in synapses) + Counter(d for _, _, d, _, _ in synapses)
    assert table.degree.tolist() == [ends[n] for n in range(neurons)]  # kernel weights each count
    k = np.array([ends[n] for n in range(neurons)], dtype=float)
    assert D.degree_moments(net) == pytest.approx((k.mean(), (k * k).mean()))


def test_channel_graph_percolation_matches_itertools_and_networkx_in_every_order():
    model, net = block(seed=4)
    neurons, synapses, links = channel_graph_by_hand(model)
    src, dst, w, _ = net.edge_list()
    ky, kx = net.kernel_offsets()
    by_position = {(s, d, a, b): i for i, (s, d, a, b) in enumerate(zip(src.tolist(), dst.tolist(), ky.tolist(), kx.tolist()))}
    # the documented descending order: -|w|, then (src, dst), then (ky, kx)
    descending = [by_position[s, d, a, b] for _, s, d, a, b in sorted(synapses, key=lambda e: (-e[0], e[1], e[2], e[3], e[4]))]
    np.testing.assert_array_equal(P.edge_order(net, "descending"), descending)
    for order in P.ORDERS:
        samples = 2 if order == "random" else 1
        frame = P.percolation(net, order, points=13, samples=samples, seed=5)
        brute = []
        for sample in range(samples):
            sequence = P.edge_order(net, order, seed=5, sample=sample)
            brute.append([networkx_state(neurons, zip(src[sequence[:n]], dst[sequence[:n]]), links) for n in frame.edges_kept])
        expected = np.mean(brute, axis=0)
        got = frame[list(P.QUANTITIES)].to_numpy()
        np.testing.assert_allclose(got, expected, atol=1e-12, err_msg=order)
    row = C.components(net).iloc[0]
    giant, _, count, _ = networkx_state(neurons, zip(src, dst), links)
    assert (row.giant_fraction, row.components) == (giant, count)


def test_random_order_gives_each_kernel_weight_of_a_channel_pair_its_own_place():
    kernel = np.ones((1, 1, 3, 3))  # nine kernel weights, one channel pair, equal |w|
    from netarchive.model import Conv

    conv = Layer.from_dense("c.weight", kernel, conv=Conv(kernel=(3, 3), in_spatial=(3, 3)), source=0, target=1)
    net = Checkpoint("r", 0, (conv,), groups=(Group("input", 1, (3, 3)), Group("c", 1, (1, 1))),
                     program=(Op("input"), Op("layer", (0,), 1, 0)))
    keys = P.order_key(net, "random", seed=1)
    assert len(set(keys.tolist())) == 9
    ky, kx = net.kernel_offsets()
    descending = P.edge_order(net, "descending")
    assert list(zip(ky[descending].tolist(), kx[descending].tolist())) == [(a, b) for a in range(3) for b in range(3)]
    shuffled = Layer(conv.name, 1, 1, conv.src[::-1], conv.dst[::-1], conv.w[::-1], ky=conv.ky[::-1], kx=conv.kx[::-1],
                     conv=conv.conv, source=0, target=1)
    other = Checkpoint("r", 0, (shuffled,), groups=net.groups, program=net.program)
    first = P.edge_order(net, "random", seed=1)
    second = P.edge_order(other, "random", seed=1)
    assert list(zip(ky[first], kx[first])) == list(zip(other.kernel_offsets()[0][second], other.kernel_offsets()[1][second]))


def quantised(net: Checkpoint, step: float) -> Checkpoint:
    """``net`` with every |w| rounded to a multiple of ``step`` (zeros kept as stored weights): many ties,
    across channel pairs and among the kernel weights of one pair; each layer's synapses stored in reverse."""
    def reverse(array):
        return None if array is None else np.ascontiguousarray(array[::-1])

    layers = tuple(dataclasses.replace(layer, src=reverse(layer.src), dst=reverse(layer.dst), ky=reverse(layer.ky),
                                       kx=reverse(layer.kx), w=reverse(np.round(layer.w / step) * step).astype(np.float32))
                   for layer in net.layers)
    return dataclasses.replace(net, layers=layers)


@pytest.mark.parametrize("factory, shape", [("basic_block", (3, 4, 4)), ("cnn", (1, 8, 8)), ("depthwise_separable", (4, 6, 6)),
                                            ("conv1d_net", (2, 9)), ("residual_mlp", (1, 2, 3))])
@pytest.mark.parametrize("step", [None, 0.05])
def test_magnitude_orders_on_the_channel_graph_equal_the_prefix_algorithm(factory, shape, step):
    """The layers' forests and the bucketed positions give exactly the merges of the sorted-prefix algorithm
    (:func:`percolation.merges`), ties and permanent connections included."""
    for seed in range(3):
        net = from_module(prune_randomly(getattr(models, factory)(), density=0.6, seed=seed), run="r", level=0,
                          input_shape=shape)
        net = net if step is None else quantised(net, step)
        g = graph(net)
        for order in P.MAGNITUDE_ORDERS:
            fast = P.checkpoint_merges(net, order)
            sorted_prefix = P.merges(g.neurons, g.src, g.dst, P.order_key(net, order), permanent=(g.link_src, g.link_dst))
            for field in ("position", "s1", "s2", "sum_sq"):
                np.testing.assert_array_equal(getattr(fast, field), getattr(sorted_prefix, field), err_msg=f"{order} {field}")
            assert (fast.clusters, fast.edges, fast.neurons) == (sorted_prefix.clusters, sorted_prefix.edges, sorted_prefix.neurons)
    hand = hand_residual()
    g = graph(hand)
    for order in P.MAGNITUDE_ORDERS:
        expected = P.merges(g.neurons, g.src, g.dst, P.order_key(hand, order), permanent=(g.link_src, g.link_dst))
        np.testing.assert_array_equal(P.checkpoint_merges(hand, order).position, expected.position)


@pytest.mark.parametrize("factory, shape", [("basic_block", (3, 4, 4)), ("cnn", (1, 8, 8)), ("depthwise_separable", (4, 6, 6)),
                                            ("conv1d_net", (2, 9)), ("residual_mlp", (1, 2, 3))])
@pytest.mark.parametrize("density", [0.6, 0.1])
def test_random_order_on_the_channel_graph_equals_the_prefix_algorithm(factory, shape, density):
    """The forest found by filter-Kruskal and the bucketed positions give exactly the merges of the
    sorted-prefix algorithm (:func:`percolation.merges`), permanent connections included."""
    for seed in range(3):
        net = from_module(prune_randomly(getattr(models, factory)(), density=density, seed=seed), run="r", level=0,
                          input_shape=shape)
        g = graph(net)
        for sample in range(3):
            key = P.order_key(net, "random", seed, sample)
            fast = P.random_merges(g, key)
            sorted_prefix = P.merges(g.neurons, g.src, g.dst, key, permanent=(g.link_src, g.link_dst))
            for field in ("position", "s1", "s2", "sum_sq"):
                np.testing.assert_array_equal(getattr(fast, field), getattr(sorted_prefix, field), err_msg=field)
            assert (fast.clusters, fast.edges, fast.neurons) == (sorted_prefix.clusters, sorted_prefix.edges, sorted_prefix.neurons)


def test_random_order_with_colliding_keys_breaks_ties_as_the_sorted_prefix(monkeypatch):
    """Two merging synapses of one key merge in (src, dst) order; a merging synapse whose key a synapse
    that does not merge shares is left to the sorted prefix (checkpoint_merges falls back to it)."""
    net = from_module(prune_randomly(models.basic_block(), density=0.6, seed=0), run="r", level=0, input_shape=(3, 4, 4))
    g = graph(net)
    cluster, sizes = P._clusters(g.neurons, (g.link_src, g.link_dst))
    ends = (cluster[g.src], cluster[g.dst])
    original = P.order_key(net, "random")
    forest = np.flatnonzero(spanning.filter_kruskal(original, ends, len(sizes)))
    first, last = forest[np.argmin(original[forest])], forest[np.argmax(original[forest])]
    parallel = np.flatnonzero((ends[0] == ends[0][first]) & (ends[1] == ends[1][first]))
    beside = parallel[parallel != first][0]  # another kernel weight of the same channel pair: it cannot merge
    for tied, falls_back in (((first, last), False), ((first, beside), True)):
        key = original.copy()
        key[tied[1]] = key[tied[0]]
        expected = P.merges(g.neurons, g.src, g.dst, key, permanent=(g.link_src, g.link_dst))
        fast = P.random_merges(g, key)
        assert (fast is None) == falls_back
        monkeypatch.setattr(P, "order_key", lambda *args, key=key: key)
        for result in ([] if fast is None else [fast]) + [P.checkpoint_merges(net, "random")]:
            for field in ("position", "s1", "s2", "sum_sq"):
                np.testing.assert_array_equal(getattr(result, field), getattr(expected, field), err_msg=field)


# --- the unrolled graph against an explicit Toeplitz construction -----------------------------------------

def toeplitz_by_hand(model):
    """The unit graph of the pruned block on 3x4x4 inputs, written out from the tensors and the module's
    geometry: units (group, c, y, x) numbered offset[g] + c·H·W + y·W + x; one edge per kernel weight and
    output position; additions unit to unit; the global average pool and flatten from every unit of a
    channel to its flattened unit; the Linear head as it is. Returns units, [(synapse key, src, dst, w)], links."""
    shapes = [(3, 4, 4), (4, 4, 4), (8, 2, 2), (8, 2, 2), (8, 2, 2), (8, 2, 2), (8, 1, 1), (3, 1, 1)]
    sizes = [int(np.prod(s)) for s in shapes]
    offset = np.concatenate([[0], np.cumsum(sizes)])

    def unit(g, c, y, x):
        _, h, w = shapes[g]
        return int(offset[g] + c * h * w + y * w + x)

    geometry = {"stem": (1, 1), "conv1": (2, 1), "conv2": (1, 1), "shortcut.0": (2, 0)}  # stride, padding
    edges = []
    for name, weight in block_weights(model).items():
        source, target = BLOCK_LAYERS[name + ".weight"]
        if weight.ndim == 2:
            for o, i in itertools.product(*map(range, weight.shape)):
                if weight[o, i]:
                    edges.append(((name, o, i, -1, -1), unit(source, i, 0, 0), unit(target, o, 0, 0), weight[o, i]))
            continue
        stride, padding = geometry[name]
        _, in_h, in_w = shapes[source]
        _, out_h, out_w = shapes[target]
        for o, i, ky, kx in itertools.product(*map(range, weight.shape)):
            if not weight[o, i, ky, kx]:
                continue
            for oy, ox in itertools.product(range(out_h), range(out_w)):
                iy, ix = oy * stride - padding + ky, ox * stride - padding + kx
                if 0 <= iy < in_h and 0 <= ix < in_w:
                    edges.append(((name, o, i, ky, kx), unit(source, i, iy, ix), unit(target, o, oy, ox), weight[o, i, ky, kx]))
    links = [(unit(a, c, y, x), unit(5, c, y, x)) for a in (3, 4) for c, y, x in itertools.product(range(8), range(2), range(2))]
    links += [(unit(5, c, y, x), unit(6, c, 0, 0)) for c, y, x in itertools.product(range(8), range(2), range(2))]
    return int(offset[-1]), edges, links


def test_unrolled_components_and_degrees_match_networkx():
    model, net = block(seed=6)
    units, edges, links = toeplitz_by_hand(model)
    synapses = nx.MultiDiGraph()
    synapses.add_nodes_from(range(units))
    synapses.add_weighted_edges_from((s, d, float(w)) for _, s, d, w in edges)
    table = D.degrees(net, unroll=True)
    assert len(table) == units
    assert table.in_degree.tolist() == [synapses.in_degree(n) for n in range(units)]
    assert table.out_degree.tolist() == [synapses.out_degree(n) for n in range(units)]
    assert table.strength.to_numpy() == pytest.approx([synapses.in_degree(n, weight="weight") + synapses.out_degree(n, weight="weight")
                                                        for n in range(units)], abs=1e-5)
    whole = nx.Graph(synapses.to_undirected())
    whole.add_edges_from(links)
    expected = sorted(sorted(c) for c in nx.connected_components(whole))
    labels = C.component_labels(net, unroll=True)
    got = sorted(sorted(np.flatnonzero(labels == label).tolist()) for label in np.unique(labels))
    assert got == expected
    flow = nx.DiGraph(synapses)
    flow.add_edges_from(links)
    inputs, outputs = range(48), range(units - 3, units)
    row = C.components(net, unroll=True).iloc[0]
    assert row.graph == "unrolled" and row.edges == len(edges) and row.connections == len(links)
    assert row.inputs_connected == np.mean([any(nx.has_path(flow, i, o) for o in outputs) for i in inputs])
    assert row.outputs_connected == np.mean([any(nx.has_path(flow, i, o) for i in inputs) for o in outputs])


def test_unrolled_percolation_removes_a_kernel_weight_at_all_its_positions():
    model, net = block(seed=7, density=0.4)
    units, edges, links = toeplitz_by_hand(model)
    src, dst, _, layer = net.edge_list()
    ky, kx = net.kernel_offsets()
    key_of = [(net.layers[l].name[: -len(".weight")], int(d - net.offsets[net.layers[l].target]),
               int(s - net.offsets[net.layers[l].source]), int(a), int(b))
              for s, d, l, a, b in zip(src, dst, layer, ky, kx)]
    for order, canonical, samples in (("descending", False, 1), ("random", False, 2), ("random", True, 1)):
        frame = P.percolation(net, order, points=9, samples=samples, seed=3, unroll=True, canonical=canonical,
                              kept=[0.0, 0.05, 0.2, 0.5, 1.0] if canonical else None)
        assert (frame.graph == "unrolled").all()
        per_sample = []
        for sample in range(samples):
            sequence = P.edge_order(net, order, seed=3, sample=sample)
            rank = {key_of[e]: r for r, e in enumerate(sequence)}
            points = range(net.edges + 1) if canonical else frame.edges_kept
            states = [networkx_state(units, [(s, d) for key, s, d, _ in edges if rank[key] < n], links) for n in points]
            if canonical:
                from scipy.stats import binom

                weights = np.array([binom.pmf(np.arange(net.edges + 1), net.edges, p) for p in frame.p])
                per_sample.append(weights @ np.array(states))
            else:
                per_sample.append(np.array(states))
        np.testing.assert_allclose(frame[list(P.QUANTITIES)].to_numpy(), np.mean(per_sample, axis=0), atol=1e-9,
                                   err_msg=f"{order} canonical={canonical}")


def test_unrolled_thresholds_and_the_bound():
    model, net = block(seed=8)
    units, edges, links = toeplitz_by_hand(model)
    k = np.zeros(units)
    for _, s, d, _ in edges:
        k[s] += 1
        k[d] += 1
    row = P.thresholds(net, samples=2, unroll=True).iloc[0]
    assert row.graph == "unrolled"
    assert row.p_c_molloy_reed == pytest.approx(k.mean() / ((k * k).mean() - k.mean()))
    with pytest.raises(InputError, match=f"would have {len(edges) + len(links):,} edges, more than the bound of 100"):
        graph(net, unroll=True, max_edges=100)


def test_an_mlp_unrolled_is_its_channel_graph():
    from tests.conftest import random_checkpoint

    net = random_checkpoint([6, 5, 4], density=0.6, seed=2, input_shape=(1, 2, 3))
    for function in (C.components, D.degrees, D.degree_summary):
        assert function(net, unroll=True).drop(columns="graph", errors="ignore").equals(
            function(net).drop(columns="graph", errors="ignore"))
    np.testing.assert_array_equal(P.percolation(net, "random", unroll=True, samples=2)[list(P.QUANTITIES)],
                                  P.percolation(net, "random", samples=2)[list(P.QUANTITIES)])


# --- robustness against torch, and the summary --------------------------------------------------------------

@pytest.mark.parametrize("factory, shape", [("cnn", (1, 8, 8)), ("basic_block", (3, 4, 4))])
def test_robustness_of_a_cnn_is_torchs_forward_pass_with_the_same_synapses_removed(factory, shape):
    """At every point: accuracy and loss of the user's own module with the removed kernel
    weights masked out (torch.nn.utils.prune), the giant fraction of percolation, and inputs_connected
    of the subnetwork's data flow."""
    import copy

    from torch.nn.utils import prune

    from netarchive.analysis.robustness import robustness

    model = prune_randomly(getattr(models, factory)(), density=0.6, seed=1)
    net = from_module(model, run="r", level=0, input_shape=shape)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, int(np.prod(shape)))).astype(np.float32)
    y = rng.integers(0, 3, 30)
    for order in ("descending", "random"):
        curve = robustness(net, x, y, order, points=4, samples=1, seed=4)
        ordered = P.edge_order(net, order, seed=4, sample=0)
        structure = P.percolation(net, order, points=4, samples=1, seed=4)
        np.testing.assert_allclose(curve.giant_fraction, structure.giant_fraction)
        for row in curve.itertuples():
            keep = np.zeros(net.edges, dtype=bool)
            keep[ordered[: row.edges_kept]] = True
            part = net.subnetwork(keep)
            masked = copy.deepcopy(model)
            modules = dict(masked.named_modules())
            for layer in part.layers:
                prune.custom_from_mask(modules[layer.name.removesuffix(".weight")], "weight", torch.from_numpy(layer.mask()))
            with torch.no_grad():
                logits = masked(torch.from_numpy(x.reshape(len(x), *shape)))
            assert row.accuracy == float((logits.argmax(1).numpy() == y).mean())
            assert row.loss == pytest.approx(float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))), abs=1e-5)
            assert row.inputs_connected == C.reachable(part, forward=False).mean()


@pytest.mark.parametrize("factory, shape", [("cnn", (1, 8, 8)), ("basic_block", (3, 4, 4))])
def test_summary_of_a_cnn_has_every_scalar_of_its_analyses(factory, shape):
    from netarchive.analysis.locality import unit_locality
    from netarchive.analysis.motifs import motifs
    from netarchive.analysis.summary import COLUMNS, GLOSSARY, summary_row

    net = from_module(prune_randomly(getattr(models, factory)(), density=0.5, seed=3), run="r", level=2, input_shape=shape)
    row = summary_row(net, samples=3).iloc[0]
    assert list(row.index) == ["run", "level", "sparsity", *COLUMNS] == list(GLOSSARY)  # the glossary says what each is
    assert "first Linear layer reading pixels" in GLOSSARY["locality"] and "channel graph" in GLOSSARY["components"]
    components = C.components(net).iloc[0]
    assert (row.components, row.giant_fraction, row.inputs_connected) == (components.components, components.giant_fraction,
                                                                          components.inputs_connected)
    assert row.p_c_measured == P.thresholds(net, samples=3).p_c_measured.item() and np.isnan(row.p_c_seed)
    whole = motifs(net, motifs=("diverging", "converging", "chain")).query("layer == 'all'").set_index("motif").z
    assert np.isfinite(whole.converging)  # (a dense channel-pair layer has no variance under the fixed null)
    assert (row.z_diverging, row.z_converging, row.z_chain) == pytest.approx((whole.diverging, whole.converging, whole.chain), nan_ok=True)
    finite = [name for name in COLUMNS if name not in ("p_c_seed", "locality", "past_critical") and not name.startswith("z_")]
    assert np.isfinite(row[finite].astype(float)).all(), row[finite]
    fc = len(net.layers) - 1  # the Linear layer after the flatten: pixels (channel, y, x) of the feature map
    assert row.locality == pytest.approx(unit_locality(net, layers=[fc]).locality.mean(), nan_ok=True)
    assert np.isfinite(row.locality) == (factory == "cnn")  # the block's flatten is of a 1x1 map: no distances


# --- the command line (chains: the archive stores them today) --------------------------------------------------

def test_cli_unroll_on_a_chain_and_its_refusals(tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    import netarchive
    from netarchive.analysis import graphs
    from netarchive.cli import cli
    from tests.conftest import random_checkpoint

    with netarchive.open(tmp_path / "a") as archive:
        archive.write(random_checkpoint([6, 5, 4], density=0.6, seed=2, run="r"))
    def run(*args):
        return CliRunner().invoke(cli, ["--store", str(tmp_path / "a"), *args])
    channel = json.loads(run("query", "components", "--run", "r", "--format", "json").output)
    unrolled = json.loads(run("query", "components", "--run", "r", "--unroll", "--format", "json").output)
    assert [row.pop("graph") for row in (channel[0], unrolled[0])] == ["channel", "unrolled"] and channel == unrolled
    for command in (["percolation", "--points", "3"], ["threshold", "--samples", "2"], ["degrees", "--summary"]):
        result = run("query", *command, "--run", "r", "--unroll", "--format", "csv")
        assert result.exit_code == 0, result.output
    assert run("query", "degrees", "--run", "r", "--format", "csv").output.startswith("run,level,group,index,")
    for command in ("components", "degrees"):
        refused = run("query", command, "--run", "r", "--unroll", "--write")
        assert refused.exit_code == 1 and refused.output.count("\n") == 1 and "--unroll" in refused.output
    for plot in ("percolation", "degrees"):
        assert run("plot", plot, "--run", "r", "--unroll", "-o", str(tmp_path / f"{plot}.png")).exit_code == 0
    monkeypatch.setattr(graphs, "UNROLL_MAX_EDGES", 10)
    bound = run("query", "percolation", "--run", "r", "--unroll")
    assert bound.exit_code == 1 and bound.output.count("\n") == 1
    assert "more than the bound of 10: analyse the channel graph" in bound.output
