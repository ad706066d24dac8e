"""An OpenLTH run of ``cifar_resnet_20`` as open_lth writes it (lottery_<hash>/replicate_<N>/level_<L>/main/,
science.md), ingested with ``--model netarchive.zoo.openlth:cifar_resnet_20``: every kernel weight archived
is the state_dict's under the level's mask, ``eval`` equals torch's forward pass of the masked module, and
``query tccr --convention seed`` gives seed 002's ResNet-20 table."""
import hashlib
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import netarchive
from netarchive.cli import cli
from netarchive.zoo import openlth

LEVELS = 3
SPEC = "netarchive.zoo.openlth:cifar_resnet_20"


def prunable(model):
    """OpenLTH's prunable layers: the weights of every convolution and Linear layer."""
    return [f"{name}.weight" for name, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]


def write_openlth_run(root):
    """Levels 0 … LEVELS-1 of one replicate: random masks keeping 0.8**L of each layer, weights (not zero
    where masked, as open_lth saves them) and batch-norm statistics that differ per level. Returns the
    replicate directory and, per level, the end-of-training state_dict and mask."""
    torch.manual_seed(0)
    model = openlth.cifar_resnet_20()
    generator = torch.Generator().manual_seed(1)
    hparams = "Model Hyperparameters:\n    * model_name => cifar_resnet_20\n    * model_init => kaiming_normal\n"
    replicate = root / f"lottery_{hashlib.md5(hparams.encode()).hexdigest()}" / "replicate_1"
    (replicate / "level_pretrain" / "main").mkdir(parents=True)  # no mask: not a level of the run
    saved = []
    for level in range(LEVELS):
        main = replicate / f"level_{level}" / "main"
        main.mkdir(parents=True)
        state = {k: v + 0.01 * torch.randn(v.shape, generator=generator) if v.is_floating_point() else v
                 for k, v in model.state_dict().items()}
        for key in state:
            if key.endswith("running_var"):
                state[key] = torch.rand(state[key].shape, generator=generator) + 0.5
        mask = {name: (torch.rand(state[name].shape, generator=generator) < 0.8**level).to(torch.int64)
                for name in prunable(model)}
        torch.save(model.state_dict(), main / "model_ep0_it0.pth")
        torch.save(state, main / "model_ep2_it0.pth")
        torch.save(mask, main / "mask.pth")
        total = sum(m.numel() for m in mask.values())
        (main / "sparsity_report.json").write_text(json.dumps({"total": total, "unpruned": int(sum(m.sum() for m in mask.values()))}))
        (main / "logger").write_text(f"test_accuracy,40,0.{7 - level}\ntest_loss,40,1.{level}\n")
        if level == 0:
            (main / "hparams.log").write_text(hparams)
        saved.append((state, mask))
    return replicate, saved


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("openlth")
    replicate, saved = write_openlth_run(tmp / "runs")
    store = tmp / "archive"
    result = CliRunner().invoke(cli, ["--store", str(store), "ingest", str(replicate), "--run", "r20",
                                      "--model", SPEC, "--input-shape", "3,32,32"])
    assert result.exit_code == 0, result.output
    return store, saved


def invoke(store, *args):
    result = CliRunner().invoke(cli, ["--store", str(store), *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


def test_every_kernel_weight_is_the_state_dicts_under_its_mask(ingested):
    store, saved = ingested
    with netarchive.open(store, read_only=True) as archive:
        assert archive.levels("r20") == list(range(LEVELS))
        listing = archive.checkpoints("r20")
        for level, (state, mask) in enumerate(saved):
            checkpoint = archive.checkpoint("r20", level)
            assert checkpoint.architecture_source == f"traced from {SPEC}"
            assert checkpoint.metrics == {"accuracy": float(f"0.{7 - level}"), "loss": float(f"1.{level}")}
            assert list(checkpoint.layer_names) == list(mask)  # forward order: conv, blocks…, shortcuts, fc
            for layer in checkpoint.layers:
                expected = (state[layer.name] * mask[layer.name]).numpy()
                assert layer.dense().shape == expected.shape
                np.testing.assert_array_equal(layer.dense(), expected)
                np.testing.assert_array_equal(layer.mask(), mask[layer.name].numpy().astype(bool))
            assert checkpoint.edges == sum(int(m.sum()) for m in mask.values())
            batchnorms = {bn.name: bn for bn in checkpoint.batchnorms}
            np.testing.assert_array_equal(batchnorms["bn"].running_var, state["bn.running_var"].numpy())
        assert listing["edges"].tolist() == [sum(int(m.sum()) for m in mask.values()) for _, mask in saved]


def test_eval_equals_torch_on_the_masked_module(ingested, tmp_path):
    store, saved = ingested
    state, mask = saved[2]
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, 16)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    model = openlth.cifar_resnet_20()
    model.load_state_dict({k: v * mask[k] if k in mask else v for k, v in state.items()})
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(x))
    table = pd.read_csv(io.StringIO(invoke(store, "eval", "--run", "r20", "--level", 2, "--data", tmp_path / "data.npz",
                                           "--format", "csv")))
    assert table["accuracy"].iloc[0] == float((out.argmax(1).numpy() == y).mean())
    assert table["loss"].iloc[0] == pytest.approx(torch.nn.functional.cross_entropy(out, torch.from_numpy(y)).item(), abs=1e-5)


@pytest.mark.parametrize("level", [0, 2])
def test_seed_tccr_reproduces_seed_002s_resnet20_table(ingested, level):
    """Seed 002, Appendix F (ResNet-20, CIFAR-10): 7 convolutions at 32×32, 6 at 16×16, 6 at 8×8, the dense
    layer, the final ratio; the 1×1 projection shortcuts are left out. The masks do not change them."""
    store, _ = ingested
    table = pd.read_csv(io.StringIO(invoke(store, "query", "tccr", "--run", "r20", "--level", level,
                                           "--convention", "seed", "--format", "csv")))
    layers = table[table["scope"] == "layer"]
    counted = layers[layers["counted"]]
    assert counted["tccr"].round(5).tolist() == [4.22946] * 7 + [3.97927] * 6 + [3.53374] * 6 + [8.76712]
    assert layers[~layers["counted"]]["layer_name"].tolist() == ["blocks.3.shortcut.0.weight", "blocks.6.shortcut.0.weight"]
    network = table[table["scope"] == "network"].iloc[0]
    assert (network["dense_edges"], network["tree_edges"]) == (82432, 19778)
    assert round(network["tccr"], 5) == 4.16786
