"""OpenLTH experiment trees, in open_lth's exact layout (tests/openlth_tree.py): every run, level, label,
metric and curve point comes out as written; each wrong or contradictory file is one line and changes nothing."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import netarchive
from netarchive.cli import cli
from netarchive.errors import InputError
from netarchive.loaders import load
from tests import openlth_tree as tree
from tests.conftest import edge_set
from tests.test_cli import one_line_error

BRANCH_RUN = f"lth-r1-randomly_prune_{tree.BRANCH_HASH[:8]}"
RUNS = {  # run -> (replicate, levels, is the branch)
    "lth-r1": (1, tree.LEVELS, False),
    BRANCH_RUN: (1, tree.BRANCH_LEVELS, True),
    "lth-r2": (2, tree.LEVELS, False),
}


@pytest.fixture
def lottery(tmp_path):
    return tree.write_tree(tmp_path / "open_lth_data")


def expected_edges(replicate, level, step, branch):
    """The synapses the tree's files say: the saved weights where the mask is 1."""
    state, masks = tree.state(replicate, level, step, branch), tree.mask(level, branch)
    edges = set()
    for index, name in enumerate(("fc_layers.0.weight", "fc.weight")):
        weight = state[name].numpy() * masks[name].numpy()
        for dst, src in zip(*np.nonzero(weight)):
            edges.add((index, int(src), int(dst), float(weight[dst, src])))
    return edges


def logged(run, level):
    """The logger rows of a level as the tree wrote them, pre-training rows (level 0) prefixed."""
    replicate, _, branch = RUNS[run]
    seed = 0.05 if branch else replicate / 100
    rows = tree.evaluations(level, tree.REWIND, tree.END, seed=seed)
    if level == 0 and not branch:
        rows += [(f"pretrain_{name}", it, value) for name, it, value in tree.evaluations(-1, (0, 0), tree.REWIND, seed=seed)]
    return rows


def test_every_run_level_label_metric_and_curve_comes_out_as_written(lottery, archive):
    archive.ingest([lottery], run="lth")
    listing = archive.checkpoints()
    assert list(zip(listing.run, listing.level)) == [(run, level) for run in sorted(RUNS) for level in RUNS[run][1]]
    for run, (replicate, levels, branch) in RUNS.items():
        for level in levels:
            checkpoint = archive.checkpoint(run, level)
            assert edge_set(checkpoint) == expected_edges(replicate, level, tree.END, branch)
            assert checkpoint.layer_names == ("fc_layers.0.weight", "fc.weight")
            assert checkpoint.layers[0].bias.tolist() == [0.5 + level, -0.5 + level, 0.25 + level]
            end = {name: value for name, it, value in logged(run, level) if it == tree.iteration(tree.END)}
            assert checkpoint.metrics == {"accuracy": end["test_accuracy"], "loss": end["test_loss"]}
    labels = archive.runs().set_index("run")
    for run, (replicate, _, branch) in RUNS.items():
        expected = {**tree.LABELS, "replicate": str(replicate), "activation": "relu"}
        if branch:
            expected.update(branch="randomly_prune", branch_hash=tree.BRANCH_HASH)
        assert labels.loc[run].dropna().to_dict() == expected
    curves = archive.curves()
    assert list(curves.columns) == ["run", "level", "metric", "iteration", "value"]
    for (run, level), part in curves.groupby(["run", "level"], sort=False):
        rows = logged(run, level)
        order = list(dict.fromkeys(name for name, _, _ in rows))  # metric by metric, iterations ascending
        assert list(part.itertuples(index=False, name=None)) == [
            (run, level, name, it, value) for name in order for each, it, value in sorted(rows, key=lambda r: r[1]) if each == name
        ]
    assert curves.groupby(["run", "level"]).ngroups == 8 and len(curves) == 5 * 12 + 3 * 9 + 3 * 9


def test_which_start_is_the_rewinding_point_with_its_own_metrics(lottery):
    start = {(c.run, c.level): c for c in load([lottery], run="lth", which="start")}
    rewind = tree.iteration(tree.REWIND)
    assert rewind == 500 and set(start) == {(run, level) for run, (_, levels, _) in RUNS.items() for level in levels}
    for (run, level), checkpoint in start.items():
        replicate, _, branch = RUNS[run]
        assert edge_set(checkpoint) == expected_edges(replicate, level, tree.REWIND, branch)
        at_rewind = {name: value for name, it, value in logged(run, level) if it == rewind}
        assert checkpoint.metrics == {"accuracy": at_rewind["test_accuracy"], "loss": at_rewind["test_loss"]}
    logger = lottery / "replicate_2" / "level_1" / "main" / "logger"
    logger.write_text("\n".join(line for line in logger.read_text().splitlines() if ",500," not in line))
    [level_1] = load([logger.parent], which="start")
    assert level_1.metrics == {}  # nothing was logged at the rewinding point: no metrics, not another iteration's
    assert level_1.curves["test_accuracy"][0].tolist() == [938, 1407, 1876]


def test_any_directory_of_the_tree(lottery):
    def names(path, **options):
        return [(c.run, c.level) for c in load([path], **options)]

    short = f"lottery_{tree.LOTTERY_HASH[:8]}"
    branch = f"{short}-r1-randomly_prune_{tree.BRANCH_HASH[:8]}"
    assert names(lottery.parent) == names(lottery) == [
        *[(f"{short}-r1", l) for l in tree.LEVELS], *[(branch, l) for l in tree.BRANCH_LEVELS],
        *[(f"{short}-r2", l) for l in tree.LEVELS],
    ]
    replicate = lottery / "replicate_1"
    assert names(replicate) == [(f"{short}-r1", l) for l in tree.LEVELS] + [(branch, l) for l in tree.BRANCH_LEVELS]
    assert names(replicate, run="seed1") == [("seed1", l) for l in tree.LEVELS] + [
        (f"seed1-randomly_prune_{tree.BRANCH_HASH[:8]}", l) for l in tree.BRANCH_LEVELS]
    assert names(replicate / "level_2") == [(f"{short}-r1", 2), (branch, 2)]
    assert (replicate / "level_2" / "main" / "checkpoint.pth").exists()  # beside the model files, not a level
    assert names(replicate / "level_2" / "main") == [(f"{short}-r1", 2)]
    assert names(replicate / "level_2" / "main", run="x", level=2) == [("x", 2)]
    assert names(replicate / "level_1" / tree.BRANCH) == [(branch, 1)]
    [single] = load([replicate / "level_2" / "main"])
    assert single.meta == {**tree.LABELS, "replicate": "1"}  # the labels of level 0's hparams.log
    moved = shutil.copytree(replicate / "level_2" / "main", lottery.parent / "copied")
    assert names(moved, run="x", level=2) == [("x", 2)]
    with pytest.raises(InputError, match="cannot tell the level of .*copied: it is not in a level_<L> folder"):
        load([moved], run="x")


def test_pretraining_is_not_a_level_but_its_curves_are_kept(lottery):
    for path in (lottery / "replicate_1" / "level_pretrain", lottery / "replicate_1" / "level_pretrain" / "main"):
        with pytest.raises(InputError, match="dense pre-training phase, not a pruning level"):
            load([path], run="x")
    [level_0] = [c for c in load([lottery / "replicate_2"]) if c.level == 0]
    [alone] = load([lottery / "replicate_2" / "level_0" / "main"])
    assert {k: v[1].tolist() for k, v in alone.curves.items()} == {k: v[1].tolist() for k, v in level_0.curves.items()}
    iterations, values = level_0.curves["pretrain_test_accuracy"]
    assert iterations.tolist() == [0, 469, 500]
    assert values.tolist() == [v for name, _, v in tree.evaluations(-1, (0, 0), tree.REWIND, seed=0.02) if name == "test_accuracy"]


def test_a_retrain_branch_without_a_mask_uses_its_levels_mask(lottery):
    branch = lottery / "replicate_1" / "level_1" / tree.BRANCH
    (branch / "mask.pth").unlink()
    (branch / "sparsity_report.json").unlink()
    [checkpoint] = load([branch], run="r")
    weight = tree.state(1, 1, tree.END, branch=True)["fc_layers.0.weight"].numpy() * tree.mask(1)["fc_layers.0.weight"].numpy()
    assert checkpoint.layers[0].dense().tolist() == weight.tolist()


def test_hparams_without_pretraining_rewind_to_iteration_0(lottery):
    from netarchive.loaders.openlth import parse_hparams

    log = lottery / "replicate_1" / "level_0" / "main" / "hparams.log"
    lines = tree.HPARAMS_LOG.splitlines()
    plain = lines[:8] + lines[17:]  # no Pretraining groups: rewinding to initialisation
    log.write_text("\n".join(plain))
    labels = parse_hparams(log)
    assert labels["rewinding_steps"] == "0it" and "pretrain_lr" not in labels
    log.write_text(tree.HPARAMS_LOG.replace("    * lr => 0.1\n    * training_steps => 500it", "    * lr => 0.4\n    * training_steps => 500it"))
    assert parse_hparams(log)["pretrain_lr"] == "0.4" and parse_hparams(log)["lr"] == "0.1"


@pytest.fixture
def run_cli(tmp_path):
    store = str(tmp_path / "archive")

    def invoke(*args):
        return CliRunner().invoke(cli, ["--store", store, *map(str, args)])

    return invoke


def _snapshot(run_cli):
    listing = run_cli("ls", "--meta", "--format", "json")
    curves = run_cli("query", "curves", "--format", "csv")
    assert listing.exit_code == 0 and curves.exit_code == 0, listing.output + curves.output
    return listing.output, curves.output


BAD_FILES = [  # (file under the lottery, how it is spoilt, what the one line says)
    ("replicate_1/level_2/main/sparsity_report.json", lambda t: t.replace("11.0", "12.0"),
     "sparsity_report.json says 12 of 18 weights are unpruned, but mask.pth beside it keeps 11 of 18"),
    ("replicate_1/level_1/main/sparsity_report.json", lambda t: t[:-3], 'expected {"total": <weights>, "unpruned": <kept>}'),
    ("replicate_1/level_0/main/hparams.log", lambda t: t.replace("    * lr => 0.1", "  lr: 0.1", 1),
     "hparams.log:15: expected a section title or '    * name => value', got '  lr: 0.1'"),
    ("replicate_1/level_0/main/hparams.log", lambda t: t.replace("* subset_stride => 1", "* batch_size => 64", 1),
     "hparams.log:4: batch_size is given twice, as '128' and '64'"),
    ("replicate_2/level_1/main/logger", lambda t: t.replace("test_accuracy,938,", "test_accuracy 938 "),
     "logger:5: expected name,iteration,value, got 'test_accuracy 938"),
    ("replicate_2/level_1/main/logger", lambda t: t + "\ntest_loss,1876,9.5",
     "logger:13: test_loss at iteration 1876 is logged twice, as 0.576 and 9.5"),
    ("replicate_2/level_2/main/mask.pth", lambda t: b"not a mask", "mask.pth is not a readable PyTorch checkpoint"),
]


@pytest.mark.parametrize("relative, spoil, message", BAD_FILES, ids=[f"{p.rsplit('/', 1)[1]}-{i}" for i, (p, _, _) in enumerate(BAD_FILES)])
def test_a_wrong_or_contradictory_file_is_one_line_and_changes_nothing(lottery, run_cli, tmp_path, relative, spoil, message):
    assert run_cli("ingest", lottery, "--run", "lth").exit_code == 0
    before = _snapshot(run_cli)
    bad = shutil.copytree(lottery, tmp_path / "bad" / lottery.name)
    path = bad / relative
    spoilt = spoil(path.read_bytes() if path.suffix == ".pth" else path.read_text())
    path.write_bytes(spoilt) if isinstance(spoilt, bytes) else path.write_text(spoilt)
    one_line_error(run_cli("ingest", bad, "--run", "other"), message)
    assert _snapshot(run_cli) == before


def test_wrong_directories_are_one_line_and_change_nothing(lottery, run_cli, tmp_path):
    assert run_cli("ingest", lottery, "--run", "lth").exit_code == 0
    before = _snapshot(run_cli)
    unfinished = shutil.copytree(lottery / "replicate_2", tmp_path / "unfinished")
    (unfinished / "level_2" / "main" / "model_ep4_it0.pth").unlink()
    second = shutil.copytree(lottery, tmp_path / "two" / f"lottery_{'0' * 32}")
    shutil.copytree(lottery, tmp_path / "two" / lottery.name)
    cases = [
        (("ingest", unfinished, "--run", "u"), "has only model_ep1_it31.pth: the level has not finished training"),
        (("ingest", lottery / "replicate_1" / "level_pretrain", "--run", "p"), "dense pre-training phase, not a pruning level"),
        (("ingest", lottery, "--run", "x", "--level", "1"), "--level applies to a single checkpoint file or level directory"),
        (("ingest", lottery / "replicate_1" / "level_1" / "main", "--level", "2"), "--level 2 contradicts the folder level_1"),
        (("ingest", unfinished), "give the run a name with --run (it cannot be named from"),
        (("ingest", second.parent, "--run", "x"), "holds 2 OpenLTH experiments: --run would name their replicates alike"),
        (("ingest", lottery, "--run", "lth"), "run 'lth-r1' already has level(s) 0, 1, 2"),
        (("ingest", lottery / "replicate_1" / "level_1" / "main" / "model_ep4_it0.pth", "--level", "1"), "give the run a name with --run"),
    ]
    for args, message in cases:
        one_line_error(run_cli(*args), message)
    assert _snapshot(run_cli) == before


def test_ls_meta_summary_and_curves_on_the_command_line(lottery, run_cli, tmp_path):
    result = run_cli("ingest", lottery, "--run", "lth", "--meta", "study=tests", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "run,level,layers,neurons,edges,sparsity,architecture_source,accuracy,loss"
    rows = json.loads(run_cli("ls", "--meta", "--format", "json").output)
    assert {row["run"]: (row["model_name"], row["pruning_fraction"], row["study"]) for row in rows} == {
        run: ("mnist_lenet_3", "0.2", "tests") for run in RUNS}
    assert "model_name" not in run_cli("ls", "--format", "csv").output  # labels only with --meta
    assert "curve_" not in run_cli("ls", "--meta", "--format", "csv").output
    summary = pd.read_csv(tmp_path / "s.csv") if run_cli(
        "query", "summary", "--where", "branch=randomly_prune", "-o", tmp_path / "s.csv").exit_code == 0 else None
    assert summary is not None and summary.run.unique().tolist() == [BRANCH_RUN]
    assert summary[["dataset_name", "rewinding_steps", "branch"]].drop_duplicates().values.tolist() == [["mnist", "500it", "randomly_prune"]]
    curves = run_cli("query", "curves", "--run", "lth-r2", "--level", "1", "--metric", "test_accuracy", "--format", "csv")
    assert curves.output.splitlines() == ["run,level,metric,iteration,value"] + [
        f"lth-r2,1,test_accuracy,{it},{value}" for name, it, value in logged("lth-r2", 1) if name == "test_accuracy"]
    one_line_error(run_cli("query", "curves", "--run", "lth-r2", "--metric", "accuracy"),
                   "no curve named 'accuracy' (curves: test_loss, test_accuracy, test_examples, pretrain_test_loss")


def test_plot_curves_says_what_each_line_is(lottery, archive, monkeypatch, tmp_path):
    from netarchive.cli import curves as command

    archive.ingest([lottery], run="lth")
    archive.close()
    drawn = []
    monkeypatch.setattr(command, "save_figure", lambda figure, output: drawn.append(figure))
    result = CliRunner().invoke(cli, ["--store", archive.location, "plot", "curves", "--run", "lth-r1", "-o", tmp_path / "c.png"])
    assert result.exit_code == 0, result.output
    [figure] = drawn
    accuracy, loss = figure.axes
    assert (accuracy.get_xlabel(), accuracy.get_ylabel()) == ("training iteration (optimizer steps)", "test accuracy (fraction correct)")
    assert loss.get_ylabel() == "test loss (cross-entropy, nats)"
    assert [text.get_text() for text in accuracy.get_legend().get_texts()] == [
        "level 0 (0.0 % pruned)", "level 1 (22.2 % pruned)", "level 2 (38.9 % pruned)", "dense pre-training"]
    assert figure._suptitle.get_text() == "training curves of run lth-r1"
    level_1 = accuracy.get_lines()[1]
    assert level_1.get_xdata().tolist() == [500, 938, 1407, 1876]


def test_curves_are_exported_with_the_checkpoints(lottery, archive, tmp_path):
    import csv

    from netarchive.neo4j_import import export_neo4j_import

    archive.ingest([lottery / "replicate_2"], run="r2")
    archive.export(tmp_path / "parquet")
    exported = pd.read_parquet(tmp_path / "parquet" / "curves")
    exported = exported.astype({"run": str, "level": int}).sort_values(["run", "level"], kind="stable")
    stored = archive.curves()
    assert exported[list(stored.columns)].values.tolist() == stored.values.tolist()
    export_neo4j_import(archive, tmp_path / "import")
    header = next(csv.reader(open(tmp_path / "import" / "checkpoints.header.csv")))
    rows = list(csv.reader(open(tmp_path / "import" / "checkpoints.csv")))
    level_1 = dict(zip(header, next(row for row in rows if row[2] == "1")))
    assert level_1["curve_iteration:long[]"] == "500;938;1407;1876;500;938;1407;1876;500;938;1407;1876"
    assert level_1["curve_metric:string[]"].split(";")[:5] == ["test_loss"] * 4 + ["test_accuracy"]


TOY_MODEL = '''
from torch import nn
from torch.nn import functional as F


class Toy(nn.Module):  # the tree's stand-in for mnist_lenet: fc_layers.0 (4 -> 3), fc (3 -> 2)
    def __init__(self):
        super().__init__()
        self.fc_layers = nn.ModuleList([nn.Linear(4, 3)])
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        for layer in self.fc_layers:
            x = F.relu(layer(x))
        return self.fc(x)


def make():
    return Toy()
'''


def test_a_tree_with_its_model_traced_gives_every_run_level_and_curve(lottery, tmp_path):
    (tmp_path / "toy.py").write_text(TOY_MODEL)
    plain = load([lottery], run="lth")
    traced = load([lottery], run="lth", model=f"{tmp_path / 'toy.py'}:make")
    assert [(c.run, c.level) for c in traced] == [(c.run, c.level) for c in plain] and len(traced) == 8
    for a, b in zip(plain, traced):
        assert b.architecture_source == f"traced from {tmp_path / 'toy.py'}:make" and b.is_sequential
        assert (a.metrics, a.meta) == (b.metrics, b.meta) and a.metrics
        assert {k: (i.tolist(), v.tolist()) for k, (i, v) in a.curves.items()} == {
            k: (i.tolist(), v.tolist()) for k, (i, v) in b.curves.items()}
        assert edge_set(a) == edge_set(b)
    with netarchive.open(tmp_path / "archive") as archive:
        archive.ingest([lottery], run="lth", model=f"{tmp_path / 'toy.py'}:make")
        assert archive.checkpoints()["run"].unique().tolist() == sorted({c.run for c in plain})
        assert len(archive.curves()) == sum(len(i) for c in plain for i, _ in c.curves.values())


def test_a_resnet_tree_with_model_reads_and_archives_every_level(tmp_path):
    """cifar_resnet_20 levels in OpenLTH's layout, ingested with --model: every level is read and traced (its
    mask applied, its logger kept) and archived with its curves."""
    import torch

    from netarchive.zoo.openlth import cifar_resnet_20

    torch.manual_seed(0)
    state = cifar_resnet_20().state_dict()
    prunable = [name for name, t in state.items() if name.endswith("weight") and t.dim() in (2, 4)]
    replicate = tmp_path / f"lottery_{tree.LOTTERY_HASH}" / "replicate_1"
    kept = {}
    for level in (0, 1):
        main = replicate / f"level_{level}" / "main"
        main.mkdir(parents=True)
        mask = {name: torch.ones_like(state[name], dtype=torch.int32) for name in prunable}
        for name in prunable[:: 2] if level else []:
            mask[name].view(-1)[: mask[name].numel() // 2] = 0
        kept[level] = int(sum(m.sum() for m in mask.values()))
        torch.save(mask, main / "mask.pth")
        (main / "sparsity_report.json").write_text(json.dumps({"total": float(sum(m.numel() for m in mask.values())),
                                                               "unpruned": float(kept[level])}))
        for step in ((0, 0), (2, 0)):
            torch.save(state, main / f"model_ep{step[0]}_it{step[1]}.pth")
        (main / "logger").write_text(f"test_accuracy,0,0.1\ntest_accuracy,782,0.{level + 5}\ntest_loss,782,1.{level}")
    spec = "netarchive.zoo.openlth:cifar_resnet_20"
    checkpoints = load([replicate], run="r20", model=spec, input_shape=(3, 32, 32))
    assert [(c.run, c.level) for c in checkpoints] == [("r20", 0), ("r20", 1)]
    assert [c.edges for c in checkpoints] == [kept[0], kept[1]]  # every prunable weight is a layer
    assert [c.metrics for c in checkpoints] == [{"accuracy": 0.5, "loss": 1.0}, {"accuracy": 0.6, "loss": 1.1}]
    assert checkpoints[1].curves["test_accuracy"][1].tolist() == [0.1, 0.6]
    assert checkpoints[0].architecture_source == f"traced from {spec}" and not checkpoints[0].is_sequential
    with netarchive.open(tmp_path / "archive") as archive:
        archive.ingest([replicate], run="r20", model=spec, input_shape=(3, 32, 32))
        assert archive.checkpoints()["edges"].tolist() == [kept[0], kept[1]]
        assert archive.checkpoint("r20", 1).curves["test_accuracy"][1].tolist() == [0.1, 0.6]
