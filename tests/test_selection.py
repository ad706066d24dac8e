"""Choosing runs: names, globs, ``all`` and labels through one resolver, on every command that takes runs;
and unknown runs and levels that say what exists."""
import shutil
from dataclasses import replace

import pytest
from click.testing import CliRunner

import netarchive
from netarchive.cli import cli
from netarchive.errors import InputError, NotFound, compact_ranges
from netarchive.selection import parse_patterns, parse_where
from tests.conftest import random_checkpoint
from tests.test_cli import one_line_error

LABELS = {
    "base": {"dataset_name": "mnist", "seed": "0"},
    "seed0": {"dataset_name": "mnist", "seed": "0"},
    "seed1": {"dataset_name": "cifar10", "seed": "1"},
    "seed2": {"dataset_name": "cifar10", "seed": "2"},
    "digits": {},
}


@pytest.fixture(scope="module")
def _study_once(tmp_path_factory):
    path = tmp_path_factory.mktemp("study") / "archive"
    with netarchive.open(path) as archive:
        for k, (run, meta) in enumerate(LABELS.items()):
            for level in ((0, 1, 2, 3, 5) if run == "digits" else (0, 1)):
                archive.write(replace(random_checkpoint((6, 5, 4), seed=k, run=run, level=level), meta=meta))
    return path


@pytest.fixture
def study(_study_once, tmp_path):
    """Five runs of two levels each (``digits`` at levels 0-3 and 5), labelled as LABELS says: a copy of
    the archive made once for the module, so that each test has its own."""
    path = tmp_path / "archive"
    shutil.copytree(_study_once, path)
    return path


def test_patterns_all_and_labels(study):
    with netarchive.open(study, read_only=True) as archive:
        assert archive.select_runs() == archive.select_runs(["all"]) == ["base", "digits", "seed0", "seed1", "seed2"]
        assert archive.select_runs(["seed*"]) == ["seed0", "seed1", "seed2"]
        assert archive.select_runs(["seed2", "b*", "seed[01]"]) == ["seed2", "base", "seed0", "seed1"]  # pattern order
        assert archive.select_runs(["seed*", "seed1"]) == ["seed0", "seed1", "seed2"]  # once each
        assert archive.select_runs("digits") == ["digits"]
        assert archive.select_runs(where={"dataset_name": "cifar10"}) == ["seed1", "seed2"]
        assert archive.select_runs(["seed*"], {"dataset_name": "mnist", "seed": "0"}) == ["seed0"]  # labels ANDed
        assert archive.select_runs(where={"dataset_name": "c*"}) == ["seed1", "seed2"]
        heard = []
        archive.select_runs(["seed*"], announce=lambda asked, runs: heard.append((asked, runs)))
        archive.select_runs(["seed0", "seed1"], announce=lambda asked, runs: heard.append((asked, runs)))  # names: silent
        assert heard == [("--runs seed*", ["seed0", "seed1", "seed2"])]


def test_selections_that_match_nothing_say_what_exists(study):
    with netarchive.open(study, read_only=True) as archive:
        with pytest.raises(NotFound, match=r"no run named 'digit' in the archive at .*; did you mean 'digits'\?$"):
            archive.select_runs(["digit"])
        with pytest.raises(NotFound, match=r"no run matches 'sed\*' in the archive at .*; did you mean 'seed0' or 'seed1' or 'seed2'\?$"):
            archive.select_runs(["sed*"])
        with pytest.raises(NotFound, match=r"no run matches 'zz\*' .* \(runs: base, digits, seed0, seed1, seed2\)$"):
            archive.select_runs(["zz*"])
        with pytest.raises(NotFound, match=r"no run among the 3 selected has dataset_name='imagenet' \(dataset_name is 'cifar10', 'mnist' there\)"):
            archive.select_runs(["seed*"], {"dataset_name": "imagenet"})
        with pytest.raises(InputError, match=r"no run has a label 'dataset'; did you mean 'dataset_name'\?"):
            archive.select_runs(where={"dataset": "mnist"})


def test_the_command_line_parser():
    assert parse_patterns("seed0", "seed*, base,", None) == ["seed0", "seed*", "base"]
    assert parse_where(["dataset_name=mnist", "lr=0.1"]) == {"dataset_name": "mnist", "lr": "0.1"}
    for bad, message in [(["dataset_name"], "is not LABEL=VALUE"), (["a=1", "a=2"], "gives a twice")]:
        with pytest.raises(InputError, match=message):
            parse_where(bad)
    with pytest.raises(InputError, match="names no run"):
        parse_patterns(" , ")


def test_every_command_that_takes_runs_selects_the_same_way(study, tmp_path):
    def invoke(*args):
        return CliRunner().invoke(cli, ["--store", str(study), *map(str, args)])

    def runs_of(result, column="run"):
        assert result.exit_code == 0, result.output
        import io

        import pandas as pd

        return sorted(set(pd.read_csv(io.StringIO(result.stdout))[column]))

    assert runs_of(invoke("ls", "--runs", "seed*", "--format", "csv")) == ["seed0", "seed1", "seed2"]
    assert runs_of(invoke("ls", "--where", "dataset_name=cifar10", "--format", "csv")) == ["seed1", "seed2"]
    assert runs_of(invoke("query", "summary", "--runs", "seed*", "--where", "dataset_name=cifar10", "--format", "csv")) == ["seed1", "seed2"]
    assert runs_of(invoke("query", "motifs", "--runs", "seed*", "--level", "1", "--totals", "--format", "csv")) == ["seed0", "seed1", "seed2"]
    compared = invoke("query", "compare", "--runs", "seed*", "--where", "dataset_name=cifar10", "--format", "csv")
    assert runs_of(compared, "run_a") == ["seed1"] and runs_of(compared, "run_b") == ["seed2"]
    result = invoke("query", "summary", "--runs", "seed*", "--format", "csv")
    assert result.stderr == "--runs seed*: 3 runs (seed0, seed1, seed2)\n"  # which runs a glob took
    assert invoke("ls", "--runs", "all", "--format", "csv").stderr == "--runs all: 5 runs (base, digits, seed0, seed1, seed2)\n"
    assert invoke("ls", "--runs", "seed0,seed1", "--format", "csv").stderr == ""  # names need no telling
    one_line_error(invoke("query", "summary", "--runs", "sed*"), "no run matches 'sed*'")
    one_line_error(invoke("query", "compare", "--runs", "seed1"), "comparing needs at least two runs; the selection has seed1")
    one_line_error(invoke("plot", "compare", "--runs", "nope*", "-o", tmp_path / "c.png"), "no run matches 'nope*'")
    one_line_error(invoke("query", "motifs", "--where", "seed=9"), "no run has seed='9' (seed is '0', '1', '2' there)")
    one_line_error(invoke("ls", "--where", "sed=0"), "no run has a label 'sed'; did you mean 'seed'?")


def test_unknown_runs_and_levels_say_what_exists(study):
    def invoke(*args):
        return CliRunner().invoke(cli, ["--store", str(study), *map(str, args)])

    one_line_error(invoke("query", "components", "--run", "digit"), "no run named 'digit' in the archive at")
    one_line_error(invoke("query", "components", "--run", "digit"), "; did you mean 'digits'?")
    one_line_error(invoke("query", "components", "--run", "digits", "--level", "9"), "run 'digits' has no level 9 in the archive at")
    one_line_error(invoke("query", "components", "--run", "digits", "--level", "9"), "; it has levels 0–3, 5")
    one_line_error(invoke("rm", "--run", "seed0", "--level", "4", "--yes"), "run 'seed0' has no level 4 in the archive at")
    one_line_error(invoke("rm", "--run", "seed0", "--level", "4", "--yes"), "it has levels 0–1")
    one_line_error(invoke("set-activation", "tanh", "--run", "bass"), "did you mean 'base'?")
    with netarchive.open(study) as archive:
        with pytest.raises(NotFound, match=r"; did you mean 'seed0' or 'seed1' or 'seed2'\?$"):
            archive.set_metrics("seed", 0, {"accuracy": 0.5})
        with pytest.raises(NotFound, match="run 'seed1' has no level 7 .*; it has levels 0–1$"):
            archive.set_input_shape("seed1", (1, 2, 3), level=7)
        with pytest.raises(NotFound, match="run 'base' has no level 2 .*; it has levels 0–1$"):
            archive.set_neuron_properties("base", 2, {})


def test_compact_ranges():
    assert compact_ranges([]) == ""
    assert compact_ranges([7]) == "7"
    assert compact_ranges(range(16)) == "0–15"
    assert compact_ranges([5, 0, 1, 2, 3, 7, 8, 10]) == "0–3, 5, 7–8, 10"
    with pytest.raises(NotFound, match=r"run 'r' has no level 2 in the archive at here; it has level 0$"):
        raise NotFound.checkpoint("r", 2, "here", [0])
    with pytest.raises(NotFound, match=r"no run named 'x' in the archive at here \(the archive is empty\)$"):
        raise NotFound.run("x", "here", [])
