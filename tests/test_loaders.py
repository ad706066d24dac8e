"""Every checkpoint format and every place a mask can live, with hand-made weights."""
import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from netarchive.errors import InputError
from netarchive.loaders import load

W1 = np.array([[0.5, 0.0, -1.0], [2.0, 3.0, 0.0]], dtype=np.float32)  # 2 outputs, 3 inputs
W2 = np.array([[1.0, -2.0]], dtype=np.float32)
M1 = np.array([[1, 0, 0], [1, 1, 1]], dtype=np.int64)


def synapses(checkpoint):
    return [
        sorted(zip(layer.src.tolist(), layer.dst.tolist(), layer.w.tolist())) for layer in checkpoint.layers
    ]


def the(path, **options):
    [checkpoint] = load([path], run="r", **options)
    return checkpoint


def test_state_dict_zeros_are_pruned(tmp_path):
    torch.save({"fc1.weight": torch.tensor(W1), "fc1.bias": torch.zeros(2), "fc2.weight": torch.tensor(W2)}, tmp_path / "level_4.pt")
    checkpoint = the(tmp_path / "level_4.pt")
    assert checkpoint.level == 4 and checkpoint.layer_names == ("fc1.weight", "fc2.weight")
    assert synapses(checkpoint) == [[(0, 0, 0.5), (0, 1, 2.0), (1, 1, 3.0), (2, 0, -1.0)], [(0, 0, 1.0), (1, 0, -2.0)]]


@pytest.mark.parametrize("wrapper", ["state_dict", "model", "model_state_dict"])
def test_wrapped_state_dict(tmp_path, wrapper):
    torch.save({wrapper: {"a.weight": torch.tensor(W1)}, "epoch": 3}, tmp_path / "c.pth")
    assert synapses(the(tmp_path / "c.pth", level=0))[0][0] == (0, 0, 0.5)


def test_torch_prune_checkpoint_multiplies_orig_by_mask(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(W1))
        model[2].weight.copy_(torch.tensor(W2))
    prune.custom_from_mask(model[0], "weight", torch.tensor(M1))
    state = model.state_dict()
    assert "0.weight_orig" in state and "0.weight" not in state
    torch.save(state, tmp_path / "p.pt")
    checkpoint = the(tmp_path / "p.pt", level=1)
    assert checkpoint.layer_names == ("0.weight", "2.weight")
    assert synapses(checkpoint)[0] == [(0, 0, 0.5), (0, 1, 2.0), (1, 1, 3.0)]  # -1.0 masked, 0.0 at (1,2) not a synapse


def test_dense_weight_beside_mask_buffer(tmp_path):
    torch.save({"fc.weight": torch.tensor(W1), "fc.weight_mask": torch.tensor(M1)}, tmp_path / "x.pt")
    assert synapses(the(tmp_path / "x.pt", level=0))[0] == [(0, 0, 0.5), (0, 1, 2.0), (1, 1, 3.0)]


@pytest.mark.parametrize("key", ["fc.weight", "fc.weight_mask", "fc"])
def test_separate_mask_file(tmp_path, key):
    torch.save({"fc.weight": torch.tensor(W1)}, tmp_path / "x.pt")
    torch.save({key: torch.tensor(M1)}, tmp_path / "mask.pt")
    assert synapses(the(tmp_path / "x.pt", level=0, mask=tmp_path / "mask.pt"))[0] == [(0, 0, 0.5), (0, 1, 2.0), (1, 1, 3.0)]


def test_safetensors_and_npz(tmp_path):
    from safetensors.numpy import save_file

    save_file({"l1.weight": W1, "l2.weight": W2}, tmp_path / "level_2.safetensors")
    np.savez(tmp_path / "level_3.npz", **{"l1.weight": W1, "l2.weight": W2})
    expected = synapses(the(tmp_path / "level_2.safetensors"))
    assert synapses(the(tmp_path / "level_3.npz")) == expected
    both = load([tmp_path], run="r")
    assert [c.level for c in both] == [2, 3]


def test_layers_option_orders_and_selects(tmp_path):
    np.savez(tmp_path / "x.npz", second=W2, first=W1, other=np.ones((5, 5)))
    checkpoint = the(tmp_path / "x.npz", level=0, layers=["first", "second"])
    assert checkpoint.layer_names == ("first", "second")
    with pytest.raises(InputError, match="no weight named 'third'"):
        the(tmp_path / "x.npz", level=0, layers=["first", "third"])


def openlth_run(root, levels=2):
    """An OpenLTH-style run: saved weights are not zero where masked."""
    for level in range(levels):
        main = root / f"level_{level}" / "main"
        main.mkdir(parents=True)
        mask = M1 if level else np.ones_like(M1)
        torch.save({"fc.weight": torch.tensor(W1 * 10), "out.weight": torch.tensor(W2)}, main / "model_ep0_it0.pth")
        torch.save({"fc.weight": torch.tensor(W1), "out.weight": torch.tensor(W2)}, main / "model_ep12_it0.pth")
        torch.save({"fc.weight": torch.tensor(mask), "out.weight": torch.ones(1, 2, dtype=torch.int64)}, main / "mask.pth")
        (main / "sparsity_report.json").write_text(json.dumps({"total": 8, "unpruned": int(mask.sum()) + 2}))
        (main / "logger").write_text(
            f"test_accuracy,0,0.1\ntest_loss,0,2.3\ntest_accuracy,12,0.{9 - level}\ntest_loss,12,0.{level + 1}\ntrain_loss,12,0.05\n"
        )
    return root


def test_openlth_run_directory(tmp_path):
    levels = load([openlth_run(tmp_path / "run")], run="r")
    assert [c.level for c in levels] == [0, 1]
    assert levels[0].edges == 4 + 2 and levels[1].edges == 3 + 2  # level 1: the mask removes -1.0
    assert levels[1].metrics == {"accuracy": 0.8, "loss": 0.2}
    assert synapses(levels[1])[0] == [(0, 0, 0.5), (0, 1, 2.0), (1, 1, 3.0)]
    start = load([tmp_path / "run"], run="r", which="start")
    assert synapses(start[1])[0] == [(0, 0, 5.0), (0, 1, 20.0), (1, 1, 30.0)]


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(InputError, match="no such file or directory"):
        load([tmp_path / "missing.pt"], run="r")
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError, match="corrupt.pt is not a readable PyTorch checkpoint"):
        load([tmp_path / "corrupt.pt"], run="r", level=0)
    torch.save({"fc1.weight": torch.tensor(W1), "fc2.weight": torch.tensor([[np.nan, 1.0]])}, tmp_path / "nan.pt")
    with pytest.raises(InputError, match="fc2.weight contains NaN"):
        load([tmp_path / "nan.pt"], run="r", level=0)
    torch.save({"fc1.weight": torch.tensor(W1), "fc2.weight": torch.ones(1, 3)}, tmp_path / "chain.pt")
    with pytest.raises(InputError, match="shapes do not chain: fc1.weight .* fc2.weight"):
        load([tmp_path / "chain.pt"], run="r", level=0)
    torch.save({"conv.weight": torch.ones(4, 1, 3, 3), "fc.weight": torch.ones(2, 4)}, tmp_path / "conv.pt")
    with pytest.raises(InputError, match=r"conv.weight has shape \(4, 1, 3, 3\), a convolution kernel: give the architecture with --model"):
        load([tmp_path / "conv.pt"], run="r", level=0)
    torch.save({"fc.weight": torch.ones(2, 4), "bn.weight": torch.ones(2), "bn.running_mean": torch.zeros(2)}, tmp_path / "bn.pt")
    with pytest.raises(InputError, match="bn.running_mean is a BatchNorm statistic: give the architecture with --model"):
        load([tmp_path / "bn.pt"], run="r", level=0)
    torch.save({"fc.weight": torch.tensor(W1)}, tmp_path / "nolevel.pt")
    with pytest.raises(InputError, match="cannot tell the level of nolevel.pt"):
        load([tmp_path / "nolevel.pt"], run="r")
    torch.save({"fc.weight": torch.tensor(W1)}, tmp_path / "x.pt")
    torch.save({"fc.weight": torch.ones(3, 3)}, tmp_path / "badmask.pt")
    with pytest.raises(InputError, match=r"the mask of fc.weight has shape \(3, 3\)"):
        load([tmp_path / "x.pt"], run="r", level=0, mask=tmp_path / "badmask.pt")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InputError, match="unknown checkpoint format"):
        load([tmp_path / "x.txt"], run="r", level=0)


def test_unsafe_pickles_are_refused(tmp_path):
    torch.save({"fc.weight": torch.tensor(W1), "model": nn.Linear(2, 2)}, tmp_path / "unsafe.pt")
    with pytest.raises(InputError, match="safe load refuses"):
        load([tmp_path / "unsafe.pt"], run="r", level=0)


def test_biases_and_activation_are_kept(tmp_path):
    torch.save({"fc1.weight": torch.tensor(W1), "fc1.bias": torch.tensor([0.5, -1.0]), "fc2.weight": torch.tensor(W2)},
               tmp_path / "b.pt")
    checkpoint = the(tmp_path / "b.pt", level=0, activation="tanh")
    assert checkpoint.layers[0].bias.tolist() == [0.5, -1.0] and checkpoint.layers[1].bias is None
    assert checkpoint.activation == "tanh"
    with pytest.raises(InputError, match="unknown activation 'swish'"):
        the(tmp_path / "b.pt", level=0, activation="swish")
    torch.save({"fc1.weight": torch.tensor(W1), "fc1.bias": torch.tensor([np.inf, 0.0])}, tmp_path / "bad.pt")
    with pytest.raises(InputError, match="fc1.bias contains NaN or inf"):
        the(tmp_path / "bad.pt", level=0)


def test_masks_must_be_zeros_and_ones_and_levels_not_negative(tmp_path):
    torch.save({"fc.weight": torch.tensor(W1)}, tmp_path / "x.pt")
    torch.save({"fc.weight": torch.tensor(W1)}, tmp_path / "weights_as_mask.pt")
    with pytest.raises(InputError, match="the mask of fc.weight has values other than 0 and 1: is it a file of weights"):
        load([tmp_path / "x.pt"], run="r", level=0, mask=tmp_path / "weights_as_mask.pt")
    torch.save({"fc.weight": torch.tensor(M1.astype(bool))}, tmp_path / "bool_mask.pt")
    assert synapses(the(tmp_path / "x.pt", level=0, mask=tmp_path / "bool_mask.pt"))[0] == [(0, 0, 0.5), (0, 1, 2.0), (1, 1, 3.0)]
    with pytest.raises(InputError, match="--level -1: a level counts pruning rounds"):
        load([tmp_path / "x.pt"], run="r", level=-1)


def test_openlth_logger_that_is_not_text_names_the_line(tmp_path):
    run = openlth_run(tmp_path / "run", levels=1)
    (run / "level_0" / "main" / "logger").write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(InputError, match=r"logger:1: expected name,iteration,value"):
        load([run], run="r")
