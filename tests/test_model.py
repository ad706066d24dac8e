import numpy as np
import pytest

from netarchive.errors import InputError
from netarchive.model import Checkpoint, Layer


def test_dense_matrix_becomes_surviving_synapses():
    layer = Layer.from_dense("fc.weight", np.array([[1.0, 0.0, 2.0], [0.0, -3.0, 0.0]]))
    assert (layer.inputs, layer.outputs, layer.edges) == (3, 2, 3)
    assert sorted(zip(layer.src.tolist(), layer.dst.tolist(), layer.w.tolist())) == [(0, 0, 1.0), (1, 1, -3.0), (2, 0, 2.0)]
    np.testing.assert_array_equal(layer.dense(), [[1, 0, 2], [0, -3, 0]])
    np.testing.assert_array_equal(layer.matrix().toarray(), layer.dense())
    np.testing.assert_array_equal(layer.mask(), [[True, False, True], [False, True, False]])


def test_checkpoint_counts_and_global_numbering():
    a = Layer.from_dense("a", np.ones((3, 2)))
    b = Layer.from_dense("b", np.array([[1.0, 0.0, 0.0]]))
    ckpt = Checkpoint("r", 1, (a, b))
    assert ckpt.widths == (2, 3, 1)
    assert ckpt.neurons == 6 and ckpt.edges == 7 and ckpt.dense_edges == 9
    assert ckpt.sparsity == pytest.approx(2 / 9)
    np.testing.assert_array_equal(ckpt.offsets, [0, 2, 5, 6])
    src, dst, w, layer = ckpt.edge_list()
    assert set(zip(src.tolist(), dst.tolist())) == {(i, 2 + j) for i in range(2) for j in range(3)} | {(2, 5)}
    assert layer.tolist().count(1) == 1
    assert ckpt.adjacency().shape == (6, 6) and ckpt.adjacency().nnz == 7
    np.testing.assert_array_equal(ckpt.neuron_layers(), [0, 0, 1, 1, 1, 2])


def test_input_coordinates_follow_torch_flatten():
    ckpt = Checkpoint("r", 0, (Layer.from_dense("a", np.ones((1, 12))),), input_shape=(2, 2, 3))
    channel, y, x = ckpt.input_coordinates()
    assert channel.tolist() == [0] * 6 + [1] * 6
    assert y.tolist() == [0, 0, 0, 1, 1, 1] * 2
    assert x.tolist() == [0, 1, 2] * 4


def test_refuses_bad_stacks():
    with pytest.raises(InputError, match="shapes do not chain: a has 3 outputs but b has 4 inputs"):
        Checkpoint("r", 0, (Layer.from_dense("a", np.ones((3, 2))), Layer.from_dense("b", np.ones((1, 4)))))
    with pytest.raises(InputError, match="input shape 1,2,2 has 4 pixels but the first layer has 2 inputs"):
        Checkpoint("r", 0, (Layer.from_dense("a", np.ones((3, 2))),), input_shape=(1, 2, 2))
    with pytest.raises(InputError, match="fc.weight: weights contain NaN"):
        Layer.from_dense("fc.weight", np.array([[np.nan, 1.0]]))
    with pytest.raises(InputError, match="outside"):
        Layer("x", 2, 2, np.array([2]), np.array([0]), np.array([1.0]))


# -- the general model ----------------------------------------------------------------------------------
import json

from netarchive.model import Conv, Group, Op


def test_grouped_kernel_becomes_channel_synapses_with_offsets():
    # 2 input channels, 4 output channels, groups = 2: outputs 0, 1 read input 0; outputs 2, 3 read input 1.
    kernel = np.zeros((4, 1, 2, 2))
    kernel[0, 0, 0, 1], kernel[1, 0, 1, 1], kernel[2, 0, 1, 0], kernel[3, 0, 0, 0] = 1.0, -2.0, 3.0, 0.5
    geometry = Conv(kernel=(2, 2), in_spatial=(5, 5), stride=2, groups=2)
    layer = Layer.from_dense("conv.weight", kernel, np.arange(4.0), conv=geometry)
    assert (layer.kind, layer.inputs, layer.outputs, layer.edges, layer.dense_size) == ("conv2d", 2, 4, 4, 16)
    assert geometry.out_spatial == (2, 2)
    assert sorted(zip(layer.src.tolist(), layer.dst.tolist(), layer.ky.tolist(), layer.kx.tolist(), layer.w.tolist())) == [
        (0, 0, 0, 1, 1.0), (0, 1, 1, 1, -2.0), (1, 2, 1, 0, 3.0), (1, 3, 0, 0, 0.5)]
    np.testing.assert_array_equal(layer.dense(), kernel)
    assert layer.mask().shape == (4, 1, 2, 2) and layer.mask().sum() == 4
    with pytest.raises(InputError, match="conv.weight is a convolution"):
        layer.matrix()
    with pytest.raises(InputError, match="joins channels of different groups"):
        Layer("bad", 2, 4, [1], [0], [1.0], ky=[0], kx=[0], conv=geometry)


def test_conv1d_is_a_height_one_conv2d():
    kernel = np.array([[[0.0, 2.0, -1.0]], [[1.0, 0.0, 0.0]]])  # [C_out=2, C_in=1, k=3]
    layer = Layer.from_dense("c.weight", kernel, conv=Conv(kernel=(1, 3), in_spatial=(1, 9), stride=(1, 2), dims=1))
    assert layer.kind == "conv1d" and layer.ky.tolist() == [0, 0, 0] and sorted(layer.kx.tolist()) == [0, 1, 2]
    assert layer.weight_shape == (2, 1, 3) and layer.conv.out_spatial == (1, 4)
    np.testing.assert_array_equal(layer.dense(), kernel)


def residual_checkpoint():
    """x (2) -> fc1 (3) -> relu -> h; h + fc2(h) -> add (3) -> out (1), built by hand."""
    fc1 = Layer.from_dense("fc1.weight", np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), source=0, target=1)
    fc2 = Layer.from_dense("fc2.weight", np.eye(3) * 2, source=1, target=2)
    out = Layer.from_dense("out.weight", np.array([[1.0, -1.0, 0.5]]), source=3, target=4)
    groups = (Group("input", 2), Group("fc1", 3), Group("fc2", 3), Group("add", 3), Group("out", 1))
    program = (Op("input"), Op("layer", (0,), 1, 0), Op("activation", (1,), 1, params={"function": "relu"}),
               Op("layer", (2,), 2, 1), Op("add", (2, 3), 3), Op("layer", (4,), 4, 2))
    return Checkpoint("r", 0, (fc1, fc2, out), groups=groups, program=program)


def test_residual_network_groups_connections_and_edges():
    net = residual_checkpoint()
    assert net.widths == (2, 3, 3, 3, 1) and net.offsets.tolist() == [0, 2, 5, 8, 11, 12]
    assert [(c.kind, c.source, c.target) for c in net.connections] == [("add", 1, 3), ("add", 2, 3)]
    src, dst, which = net.connection_edges()
    assert list(zip(src.tolist(), dst.tolist(), which.tolist())) == [
        (2, 8, 0), (3, 9, 0), (4, 10, 0), (5, 8, 1), (6, 9, 1), (7, 10, 1)]
    src, dst, w, layer = net.edge_list()
    assert sorted(zip(src.tolist(), dst.tolist(), layer.tolist())) == [
        (0, 2, 0), (0, 4, 0), (1, 3, 0), (1, 4, 0), (2, 5, 1), (3, 6, 1), (4, 7, 1), (8, 11, 2), (9, 11, 2), (10, 11, 2)]
    assert not net.is_sequential and net.neuron_groups().tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4]
    ky, kx = net.kernel_offsets()
    assert set(ky.tolist()) == set(kx.tolist()) == {-1}


def test_a_chain_is_filled_in_and_sequential():
    chain = Checkpoint("r", 0, (Layer.from_dense("fc1.weight", np.ones((3, 2))), Layer.from_dense("fc2.weight", np.ones((1, 3)))),
                       input_shape=(1, 1, 2), activation="tanh")
    assert [g.name for g in chain.groups] == ["input", "fc1", "fc2"] and chain.groups[0].coordinates == (1, 1, 2)
    assert [(l.source, l.target) for l in chain.layers] == [(0, 1), (1, 2)]
    assert [op.kind for op in chain.program] == ["input", "layer", "activation", "layer"]
    assert chain.is_sequential and chain.architecture_source == "sequential" and chain.connections == ()
    assert Checkpoint("r", 0, chain.layers, input_shape=(2, 1)).input_shape == (2, 1, 1)  # C,L -> C,1,L


def test_program_errors_name_the_op():
    net = residual_checkpoint()
    with pytest.raises(InputError, match=r"op 4 \(add\): added values differ in shape"):
        Checkpoint("r", 0, net.layers, groups=net.groups,
                   program=net.program[:4] + (Op("add", (0, 3), 3),) + net.program[5:])
    with pytest.raises(InputError, match=r"each group must appear in exactly one op of the program \(counts: \[1, 1, 1, 1, 0\]\)"):
        Checkpoint("r", 0, net.layers, groups=net.groups, program=net.program[:-1])
    with pytest.raises(InputError, match="has groups but no program"):
        Checkpoint("r", 0, net.layers, groups=net.groups)


def test_architecture_and_arrays_round_trip_through_json():
    import torch

    from netarchive.analysis.forward import forward
    from netarchive.loaders.traced import from_module
    from tests import models

    net = from_module(models.basic_block(), run="r", level=1, input_shape=(3, 8, 8))
    architecture = json.loads(json.dumps(net.architecture()))
    assert architecture["source"] == "traced from module BasicBlockNet" and architecture["format"] == 1
    assert [spec["kind"] for spec in architecture["layers"]] == ["conv2d"] * 4 + ["linear"]
    again = Checkpoint.from_architecture(architecture, net.arrays(), run="r", level=1)
    assert again.groups == net.groups and again.program == net.program and again.layer_names == net.layer_names
    for a, b in zip(net.edge_list() + net.kernel_offsets(), again.edge_list() + again.kernel_offsets()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(net.batchnorms, again.batchnorms):
        assert (a.name, a.group, a.eps) == (b.name, b.group, b.eps)
        np.testing.assert_array_equal(a.running_var, b.running_var)
    x = torch.randn(5, 3 * 8 * 8).numpy()
    np.testing.assert_array_equal(forward(net, x), forward(again, x))


def test_subnetwork_of_a_convolutional_network_keeps_offsets():
    from netarchive.analysis.forward import forward
    from netarchive.loaders.traced import from_module
    from tests import models

    net = from_module(models.depthwise_separable(), run="r", level=0, input_shape=(4, 6, 6))
    keep = np.random.default_rng(0).random(net.edges) < 0.5
    part = net.subnetwork(keep)
    assert part.edges == keep.sum() and part.dense_edges == net.dense_edges
    np.testing.assert_array_equal(part.kernel_offsets()[0], net.kernel_offsets()[0][keep])
    x = np.random.default_rng(1).normal(size=(4, 4 * 36)).astype(np.float32)
    bounds = np.cumsum([0] + [layer.edges for layer in net.layers])
    per_layer = [keep[bounds[i] : bounds[i + 1]] for i in range(len(net.layers))]
    np.testing.assert_array_equal(forward(part, x), forward(net, x, per_layer))


def _pattern(src, dst, shape):
    import scipy.sparse as sp

    return sp.coo_matrix((np.ones(len(src)), (dst, src)), shape=shape).toarray() > 0


def test_unrolled_convolution_is_the_jacobian_of_torch_conv():
    """A strided, padded, dilated, grouped convolution: its unrolled edges, weights summed per unit pair,
    are exactly d output / d input of torch's conv2d."""
    import torch

    kernel = np.random.default_rng(2).normal(size=(4, 1, 3, 3)).astype(np.float32)
    kernel[np.random.default_rng(3).random(kernel.shape) < 0.4] = 0
    geometry = Conv(kernel=(3, 3), in_spatial=(7, 6), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    conv = Layer.from_dense("c.weight", kernel, conv=geometry, source=0, target=1)
    net = Checkpoint("r", 0, (conv,), groups=(Group("input", 2, (7, 6)), Group("c", 4, geometry.out_spatial)),
                     program=(Op("input"), Op("layer", (0,), 1, 0)))
    unrolled = net.unrolled()
    assert unrolled.widths == (2 * 42, 4 * 4 * 6)
    src, dst, w, _ = unrolled.edge_list()
    toeplitz = np.zeros((unrolled.widths[1], unrolled.widths[0]))
    np.add.at(toeplitz, (dst - unrolled.offsets[1], src), w)
    jacobian = torch.autograd.functional.jacobian(
        lambda h: torch.nn.functional.conv2d(h[None], torch.tensor(kernel), None, (2, 1), (1, 2), (1, 2), 2)[0],
        torch.zeros(2, 7, 6))
    np.testing.assert_allclose(toeplitz, jacobian.reshape(toeplitz.shape).numpy(), atol=1e-6)
    channel, y, x = unrolled.unit_coordinates(1)
    assert (channel[-1], y[-1], x[-1]) == (3, 3, 5)


def test_unrolled_edges_pass_through_pooling_to_the_units_of_the_window():
    """conv -> avgpool -> conv -> flatten -> fc: the second convolution's edges start at the units under each
    pooled position, as the nonzeros of d conv2(avgpool(h)) / d h with positive weights; the flatten's
    edges follow torch.flatten; and the bound is refused in one line."""
    import torch
    from torch import nn

    from netarchive.loaders.traced import from_module

    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.AvgPool2d(2, ceil_mode=True), nn.Conv2d(3, 2, 2, stride=2, padding=1),
                          nn.Flatten(), nn.Linear(2 * 2 * 2, 2))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.uniform_(0.1, 1.0)
    net = from_module(model.eval(), run="r", level=0, input_shape=(2, 5, 5))
    assert [g.spatial for g in net.groups] == [(5, 5), (5, 5), (2, 2), None, None]
    unrolled = net.unrolled()
    src, dst, w, layer = unrolled.edge_list()
    off = unrolled.offsets
    mine = layer == 1
    got = _pattern(src[mine] - off[1], dst[mine] - off[2], (unrolled.widths[2], unrolled.widths[1]))
    jacobian = torch.autograd.functional.jacobian(lambda h: model[2](model[1](h[None]))[0], torch.zeros(3, 5, 5))
    np.testing.assert_array_equal(got, jacobian.reshape(got.shape).numpy() != 0)
    src, dst, which = unrolled.connection_edges()
    assert net.connections[0].kind == "flatten" and set(which.tolist()) == {0}
    np.testing.assert_array_equal(np.sort(dst - off[3]), np.arange(8))
    np.testing.assert_array_equal(np.sort(src - off[2]), np.arange(8))
    assert (dst - off[3] == src - off[2]).all()  # unit c·H·W + y·W + x of the flatten is unit (c, y, x) of conv 2
    with pytest.raises(InputError, match=f"the unrolled graph would have {len(unrolled.edge_list()[0]) + 8:,} edges, more than the bound of 100"):
        net.unrolled(max_edges=100)
