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
