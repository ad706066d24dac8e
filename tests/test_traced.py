"""Tracing nn.Modules into the model: the graph of each supported form, masks in every form, OpenLTH's
models, and a one-line refusal for everything else."""
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from netarchive.errors import InputError
from netarchive.loaders import load
from netarchive.loaders.traced import from_module, trace
from netarchive.zoo import openlth
from tests import models

MODELS = "tests/models.py"


def prune_randomly(model: nn.Module, density: float = 0.5, seed: int = 0) -> nn.Module:
    """``torch.nn.utils.prune`` masks on every Linear and convolution (weight_orig and weight_mask)."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            prune.custom_from_mask(module, "weight", torch.rand(module.weight.shape, generator=generator) < density)
    return model


def kinds(checkpoint):
    return [op.kind for op in checkpoint.program]


def synapses(checkpoint):
    ky, kx = checkpoint.kernel_offsets()
    src, dst, w, layer = checkpoint.edge_list()
    return sorted(zip(layer.tolist(), src.tolist(), dst.tolist(), ky.tolist(), kx.tolist(), w.tolist()))


def test_residual_mlp_has_its_addition():
    net = from_module(models.residual_mlp(), run="r", level=0)
    assert kinds(net) == ["input", "layer", "activation", "layer", "activation", "add", "layer"]
    assert [(g.name, g.size) for g in net.groups] == [("input", 6), ("fc1", 8), ("fc2", 8), ("add", 8), ("out", 3)]
    assert [(l.name, l.source, l.target) for l in net.layers] == [("fc1.weight", 0, 1), ("fc2.weight", 1, 2), ("out.weight", 3, 4)]
    assert [(c.kind, c.source, c.target) for c in net.connections] == [("add", 1, 3), ("add", 2, 3)]
    assert net.architecture_source == "traced from module ResidualMLP" and net.input_shape is None


def test_cnn_groups_geometry_and_flatten():
    net = from_module(models.cnn(), run="r", level=0, input_shape=(1, 8, 8))
    assert kinds(net) == ["input", "layer", "batchnorm", "activation", "maxpool", "layer", "batchnorm", "activation",
                          "maxpool", "flatten", "layer"]
    assert [(g.name, g.size, g.spatial, g.coordinates) for g in net.groups] == [
        ("input", 1, (8, 8), None), ("conv1", 4, (8, 8), None), ("conv2", 6, (4, 4), None),
        ("flatten", 24, None, (6, 2, 2)), ("fc", 3, None, None)]
    conv2 = net.layers[1].conv
    assert (conv2.kernel, conv2.padding, conv2.in_spatial, conv2.out_spatial) == ((3, 3), (1, 1), (4, 4), (4, 4))
    assert [(b.name, b.group) for b in net.batchnorms] == [("bn1", 1), ("bn2", 2)]
    pools = [op.params for op in net.program if op.kind == "maxpool"]
    assert pools == [{"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0), "ceil_mode": False, "dilation": (1, 1)}] * 2
    assert net.input_shape == (1, 8, 8) and net.input_features == 64
    src, dst, _ = net.connection_edges()
    assert (dst - net.offsets[3]).tolist() == list(range(24)) and (src - net.offsets[2]).tolist() == [c for c in range(6) for _ in range(4)]


def test_one_dimensional_forms_concat_and_dropout():
    net = from_module(models.conv1d_net(), run="r", level=0, input_shape=(2, 9))
    assert kinds(net) == ["input", "layer", "batchnorm", "activation", "adaptive_maxpool", "layer", "activation",
                          "adaptive_avgpool", "concat", "flatten", "layer"]  # dropout vanished
    a = net.layers[0].conv
    assert (a.dims, a.kernel, a.stride, a.padding, a.dilation, a.groups, a.out_spatial) == (1, (1, 3), (1, 2), (0, 1), (1, 2), 2, (1, 4))
    assert net.layers[0].kind == "conv1d" and set(net.layers[0].ky.tolist()) == {0}
    assert net.program[6].params == {"function": "leaky_relu", "slope": 0.2}
    assert [(c.kind, c.source, c.target, c.offset) for c in net.connections] == [
        ("concat", 1, 3, 0), ("concat", 2, 3, 4), ("flatten", 3, 4, 0)]
    assert net.input_shape == (2, 1, 9) and net.groups[3].spatial == (1, 4)


def test_mlp_from_a_flattened_image_is_a_sequential_chain_with_pixel_inputs():
    net = from_module(models.mlp(), run="r", level=0, input_shape=(1, 3, 4))
    assert net.is_sequential and net.activation == "tanh" and net.input_shape == (1, 3, 4)
    assert net.input_coordinates()[2].tolist() == [0, 1, 2, 3] * 3
    lenet = from_module(openlth.mnist_lenet_300_100(), run="r", level=0, input_shape=(1, 28, 28))
    assert lenet.is_sequential and lenet.widths == (784, 300, 100, 10)  # x.view(x.size(0), -1) of the input
    assert from_module(openlth.mnist_lenet_300_100(), run="r", level=0).input_shape is None  # 784 features


def test_every_form_of_a_mask_gives_the_same_synapses(tmp_path):
    model = prune_randomly(models.cnn(), density=0.4)
    live = from_module(model, run="r", level=0, input_shape=(1, 8, 8))
    assert 0.5 < live.sparsity < 0.7
    state = model.state_dict()
    assert "conv1.weight_orig" in state and "conv1.weight_mask" in state
    torch.save(state, tmp_path / "orig_and_mask.pt")  # torch.nn.utils.prune before prune.remove
    dense = {k.removesuffix("_orig"): v for k, v in state.items()}  # a dense weight beside its mask buffer
    torch.save(dense, tmp_path / "weight_and_mask.pt")
    torch.save({k: v for k, v in dense.items() if not k.endswith("_mask")}, tmp_path / "unmasked.pt")
    torch.save({k.removesuffix("_mask"): v for k, v in state.items() if k.endswith("_mask")}, tmp_path / "mask.pt")
    for module in model.modules():
        if prune.is_pruned(module) and hasattr(module, "weight_mask"):
            prune.remove(module, "weight")  # zeros where pruned
    torch.save(model.state_dict(), tmp_path / "zeros.pt")
    spec = f"{MODELS}:cnn"
    for name, mask in (("orig_and_mask", None), ("weight_and_mask", None), ("unmasked", "mask.pt"), ("zeros", None)):
        [loaded] = load([tmp_path / f"{name}.pt"], run="r", level=0, model=spec, input_shape=(1, 8, 8),
                        mask=tmp_path / mask if mask else None)
        assert synapses(loaded) == synapses(live), name
        assert loaded.architecture_source == f"traced from {spec}"


def test_tracing_leaves_the_module_as_it_was():
    model = prune_randomly(models.basic_block()).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    from_module(model, run="r", level=0, input_shape=(3, 8, 8))
    assert all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def pruned_with_statistics(model: nn.Module) -> nn.Module:
    """70 % of the weights zeroed (as after prune.remove), batch-norm statistics that matter."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1), module.running_var.uniform_(0.5, 1.5)
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.mul_(torch.rand(module.weight.shape) < 0.3)
    return model.eval()


def assert_forward_matches_torch(model, net, shape, samples=2):
    from netarchive.analysis.forward import forward

    x = torch.randn(samples, *shape)
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(forward(net, x.reshape(samples, -1).numpy()), expected, atol=1e-4, rtol=1e-4)


def test_openlth_cifar_resnet_20_has_the_papers_structure_and_torchs_outputs():
    model = pruned_with_statistics(openlth.cifar_resnet_20())
    net = from_module(model, run="r", level=0, input_shape=(3, 32, 32))
    threes = [l.conv for l in net.layers if l.conv and l.conv.kernel == (3, 3)]
    ones = [l for l in net.layers if l.conv and l.conv.kernel == (1, 1)]
    assert Counter(c.out_spatial for c in threes) == {(32, 32): 7, (16, 16): 6, (8, 8): 6}  # seed 002's 19 convolutions
    assert [(l.name, l.conv.stride, l.conv.out_spatial) for l in ones] == [
        ("blocks.3.shortcut.0.weight", (2, 2), (16, 16)), ("blocks.6.shortcut.0.weight", (2, 2), (8, 8))]
    segments = 3 * 16 * 9 + 6 * 16 * 16 * 9 + (16 * 32 * 9 + 5 * 32 * 32 * 9 + 16 * 32) + (32 * 64 * 9 + 5 * 64 * 64 * 9 + 32 * 64)
    assert net.dense_edges == segments + 64 * 10 == 270_896 and len(net.batchnorms) == 21
    assert sum(c.kind == "add" for c in net.connections) == 18  # 9 blocks, 2 inputs each
    assert net.layer_names[-1] == "fc.weight" and net.groups[-2].coordinates == (64, 1, 1)
    assert_forward_matches_torch(model, net, (3, 32, 32))


def test_openlth_cifar_vgg_16_traces_through_its_pool_built_in_forward():
    model = pruned_with_statistics(openlth.cifar_vgg_16())
    net = from_module(model, run="r", level=0, input_shape=(3, 32, 32))
    assert len(net.layers) == 14 and net.dense_edges == 14_715_584  # 13 convolutions + fc, "14.7 M weights"
    assert [op.kind for op in net.program].count("maxpool") == 4 and kinds(net)[-4:] == ["activation", "avgpool", "flatten", "layer"]
    assert 0.68 < net.sparsity < 0.72
    assert_forward_matches_torch(model, net, (3, 32, 32))


def test_openlth_run_directory_ingests_with_the_model(tmp_path):
    """A run as OpenLTH writes it (saved weights not zero where masked, mask.pth per level) with --model."""
    model = openlth.cifar_resnet_20()
    generator = torch.Generator().manual_seed(1)
    for level in (0, 1):
        main = tmp_path / "run" / f"level_{level}" / "main"
        main.mkdir(parents=True)
        for saved in ("model_ep0_it0.pth", "model_ep2_it0.pth"):  # the start and the end of training, as OpenLTH saves
            torch.save(model.state_dict(), main / saved)
        masks = {name: (torch.rand(value.shape, generator=generator) < 0.8 ** level).int()
                 for name, value in model.state_dict().items() if name.endswith("weight") and value.ndim > 1}
        torch.save(masks, main / "mask.pth")
        (main / "logger").write_text(f"test_accuracy,2,0.{5 + level}\n")
    levels = load([tmp_path / "run"], run="r20", model="netarchive.zoo.openlth:cifar_resnet_20", input_shape=(3, 32, 32))
    assert [c.level for c in levels] == [0, 1] and levels[1].metrics == {"accuracy": 0.6}
    nonzero = sum(int((v != 0).sum()) for k, v in model.state_dict().items() if k.endswith("weight") and v.ndim > 1)
    assert levels[0].edges == nonzero and 0.15 < levels[1].sparsity < 0.25


def test_untraceable_model_names_the_operation():
    with pytest.raises(InputError, match=r"module DataDependent cannot be traced: data-dependent control flow at "
                                         r"models.py:\d+ `if x.sum\(\) > 0:`"):
        trace(models.data_dependent())


class Softmaxed(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return torch.softmax(self.fc(x) * 2, dim=1)


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(F.relu(self.fc(x)))


class NoFlatten(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 2, 3), nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(self.conv(x))


@pytest.mark.parametrize("model, shape, message", [
    (Softmaxed(), None, r"module Softmaxed: operation mul \(operator.mul\) is not supported \(supported: Linear, Conv1d/Conv2d"),
    (Shared(), None, r"operation fc_1 \(Linear fc\) is not supported: module fc is called twice \(shared weights\)"),
    (NoFlatten(), (1, 4, 4), r"operation fc \(Linear fc\) is not supported: a Linear layer must read a flat \[N, features\] value"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect")), (1, 4, 4), r"padding_mode='reflect'"),
    (nn.Sequential(nn.Conv2d(1, 2, 4, padding="same")), (1, 5, 5), r"padding='same' with this kernel pads unevenly"),
    (models.cnn(), None, r"module CNN has convolutions: give the shape of one input sample \(--input-shape C,H,W"),
    (models.cnn(), (1, 5, 5), r"module CNN fails on an input of shape 1,5,5: node fc \(Linear fc\): mat1 and mat2 shapes"),
    (nn.Sequential(nn.Linear(4, 2), nn.Softmax(dim=1)), None, r"module Sequential: operation _1 \(Softmax 1\) is not supported"),
])
def test_unsupported_models_are_one_line_errors(model, shape, message):
    with pytest.raises(InputError, match=message) as raised:
        trace(model, shape)
    assert "\n" not in str(raised.value)


def test_weights_that_do_not_fit_name_the_tensor_and_both_shapes(tmp_path):
    state = models.residual_mlp().state_dict()
    spec = f"{MODELS}:residual_mlp"
    cases = {
        "wrong": ({**state, "fc1.weight": torch.ones(8, 7)}, r"wrong.pt: fc1.weight has shape \(8, 7\) in the checkpoint but \(8, 6\) in the model tests/models.py:residual_mlp"),
        "missing": ({k: v for k, v in state.items() if k != "out.bias"}, r"missing.pt: no tensor out.bias, which the model .* has \(shape \(3,\)\)"),
        "extra": ({**state, "fc3.weight": torch.ones(2, 2)}, r"extra.pt: the checkpoint's tensor fc3.weight is not in the model"),
    }
    for name, (tensors, message) in cases.items():
        torch.save(tensors, tmp_path / f"{name}.pt")
        with pytest.raises(InputError, match=message):
            load([tmp_path / f"{name}.pt"], run="r", level=0, model=spec)
    with pytest.raises(InputError, match="--layers does not apply with --model"):
        load([tmp_path / "wrong.pt"], run="r", level=0, model=spec, layers=["fc1"])


def test_factories_that_fail_are_one_line_errors(tmp_path):
    (tmp_path / "broken.py").write_text("def net(:\n")
    cases = [
        ("no_such_package.models:net", r"--model no_such_package.models:net: cannot import no_such_package.models: ModuleNotFoundError"),
        (f"{tmp_path}/broken.py:net", r"broken.py:net: cannot import .*broken.py: SyntaxError"),
        (f"{tmp_path}/absent.py:net", r"no such file"),
        (f"{MODELS}:raises", r"--model tests/models.py:raises: raises\(\) raised RuntimeError: CUDA is not available here"),
        (f"{MODELS}:not_a_module", r"not_a_module\(\) returned a dict, not a torch.nn.Module"),
        (f"{MODELS}:absent", r"tests/models.py has no callable absent"),
        ("models", r"expected package.module:factory or path/to/file.py:factory"),
    ]
    torch.save(models.residual_mlp().state_dict(), tmp_path / "x.pt")
    for spec, message in cases:
        with pytest.raises(InputError, match=message) as raised:
            load([tmp_path / "x.pt"], run="r", level=0, model=spec)
        assert "\n" not in str(raised.value)
