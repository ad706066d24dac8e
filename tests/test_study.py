"""Summary, cache, analyses in Parquet, study plots and the HTML report."""
import json
import re
import shutil
import subprocess
from dataclasses import replace
from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import netarchive
from netarchive.analysis.components import components
from netarchive.analysis.motifs import motifs
from netarchive.analysis.percolation import thresholds
from netarchive.analysis.persistence import neural_persistence
from netarchive.analysis.spanning import tccr
from netarchive.analysis.summary import COLUMNS
from netarchive.cli import cli
from tests.conftest import random_checkpoint


@pytest.fixture
def study(tmp_path):
    path = tmp_path / "archive"
    with netarchive.open(path) as archive:
        for run in ("s0", "s1"):
            for level, density in enumerate((0.9, 0.5)):
                checkpoint = random_checkpoint([16, 10, 6, 3], density=density, seed=10 * int(run[1]) + level, run=run,
                                               level=level, input_shape=(1, 4, 4), metrics={"accuracy": 0.5 + level / 10})
                archive.write(replace(checkpoint, meta={"seed": run[1], "model": "mlp"}))
    return path


def test_summary_rows_equal_the_analyses(study):
    with netarchive.open(study) as archive:
        table = archive.summary()
        assert list(table.columns) == ["run", "level", "sparsity", *COLUMNS, "accuracy", "seed", "model"]
        assert table[["run", "level"]].values.tolist() == [["s0", 0], ["s0", 1], ["s1", 0], ["s1", 1]]
        row = table.iloc[3]
        checkpoint = archive.checkpoint("s1", 1)
    assert row.sparsity == pytest.approx(checkpoint.sparsity) and row.accuracy == pytest.approx(0.6)
    assert row.giant_fraction == components(checkpoint).giant_fraction.item()
    assert row.p_c_measured == thresholds(checkpoint, samples=10).p_c_measured.item()
    network = neural_persistence(checkpoint).query("scope == 'network'").iloc[0]
    assert row.np_total == pytest.approx(network.np_total) and row.np_normalized_mean == pytest.approx(network.np_normalized_mean)
    assert row.tccr == pytest.approx(tccr(checkpoint).query("scope == 'network'").tccr.item())
    whole = motifs(checkpoint).query("layer == 'all'").set_index("motif").z
    assert row.z_chain == pytest.approx(whole["chain"]) and row.z_converging == pytest.approx(whole["converging"])
    assert 0 < row.locality


def test_cache_is_used_and_invalidated(study, monkeypatch):
    import netarchive.api as api

    calls = []
    original = api.summary_row

    def counting(checkpoint, **options):
        calls.append((checkpoint.run, checkpoint.level))
        return original(checkpoint, **options)

    monkeypatch.setattr(api, "summary_row", counting)
    monkeypatch.setattr(api, "_name", lambda function: "summary.summary_row")
    with netarchive.open(study) as archive:
        first = archive.summary()
        assert len(calls) == 4
        second = archive.summary()
        assert len(calls) == 4  # all four rows from the cache
        pd.testing.assert_frame_equal(first, second)
        archive.write(random_checkpoint([16, 10, 6, 3], density=0.2, seed=99, run="s0", level=1, input_shape=(1, 4, 4)),
                      replace=True)
        third = archive.summary()
        assert calls[4:] == [("s0", 1)]  # only the replaced checkpoint is computed again
        assert third.iloc[1].sparsity == pytest.approx(archive.checkpoint("s0", 1).sparsity)
        folders = {p.name for p in archive.store.cache_dir.iterdir()}
        assert folders == set(archive.store.versions().values()) | {"sets"}  # the old version's folder is gone
        assert len(list(archive.store.cache_dir.joinpath("sets").iterdir())) == 1  # the sets before it too
        pd.testing.assert_frame_equal(archive.summary(), third)
        assert len(calls) == 5
        archive.rm("s1")
        assert len(list(archive.store.cache_dir.iterdir())) == 2


def test_a_cached_summary_is_one_file(study, monkeypatch):
    """Asking again for the summary of the same unchanged checkpoints reads one table, not one per checkpoint;
    the selection and order of the checkpoints are part of it."""
    import netarchive.cache as cache

    with netarchive.open(study) as archive:
        first, one_run = archive.summary(), archive.summary(["s1"])
        reads = []
        original = cache.AnalysisCache.lookup
        monkeypatch.setattr(cache.AnalysisCache, "lookup", lambda self, *a: reads.append(a[0]) or original(self, *a))
        pd.testing.assert_frame_equal(archive.summary(), first)
        pd.testing.assert_frame_equal(archive.summary(["s1"]), one_run)
        assert len(reads) == 2 and all(version.startswith("sets/") for version in reads) and reads[0] != reads[1]
        monkeypatch.setattr(cache, "KEPT_SETS", 1)
        archive.summary(["s0"])
        assert len(list(archive.store.cache_dir.joinpath("sets").iterdir())) == 1  # only the newest set is kept
        archive.set_metrics("s0", 0, {"accuracy": 0.5})  # metrics come from the listing, never from a set
        assert archive.summary(["s0"]).set_index("level").loc[0, "accuracy"] == 0.5


def test_tables_cached_by_another_tables_version_are_never_served(study, monkeypatch):
    """An older netarchive's table (here: tccr with the old columns, layer = tensor name beside
    layer_index) filed for the same checkpoint and options is computed again, never served, and pruned."""
    import netarchive.cache as cache

    with netarchive.open(study) as archive:
        fresh = archive.analyze(tccr, "s0", 0)
        old = fresh.rename(columns={"layer": "layer_index", "layer_name": "layer"})
        version = archive.store.versions()[("s0", 0)]
        monkeypatch.setattr(cache, "TABLES_VERSION", cache.TABLES_VERSION - 1)
        archive.cache.store(version, "spanning.tccr", {}, old)
        assert list(archive.analyze(tccr, "s0", 0).columns) == list(old.columns)  # what the older one saw
        monkeypatch.undo()
        for path in archive.cache.directory.joinpath(version).rglob("*.parquet"):  # and the layout before versions
            shutil.copy(path, archive.cache.directory / version / path.name)
        again = archive.analyze(tccr, "s0", 0)
        assert list(again.columns) == list(fresh.columns)[:3] + ["layer", "layer_name"] + list(fresh.columns)[5:]
        pd.testing.assert_frame_equal(again, fresh)
        archive.rm("s1")  # prunes the cache
        left = {path.name for path in (archive.cache.directory / version).iterdir()}
    assert left == {f"tables-{cache.TABLES_VERSION}"}


def test_parallel_summary_equals_serial(study):
    with netarchive.open(study) as archive:
        serial = archive.summary(["s0"])
        shutil.rmtree(archive.store.cache_dir)
        parallel = archive.summary(["s0"], jobs=2)
    pd.testing.assert_frame_equal(serial, parallel)


def test_analyses_in_parquet(study, tmp_path):
    result = CliRunner().invoke(cli, ["--store", str(study), "export", str(tmp_path / "out"), "--analyses"])
    assert result.exit_code == 0, result.output
    base = tmp_path / "out" / "analyses"
    assert {p.name for p in base.iterdir()} == {"summary", "components", "percolation", "thresholds", "degrees",
                                                "persistence", "tccr", "overlap", "motifs", "locality"}
    summary = pd.read_parquet(base / "summary")
    assert {"run", "level", "giant_fraction", "np_total", "z_chain"} <= set(summary.columns) and len(summary) == 4
    motif_table = pd.read_parquet(base / "motifs")
    assert {"run", "level", "layer", "motif", "count", "expected", "sd", "z"} <= set(motif_table.columns)
    curves = pd.read_parquet(base / "percolation")
    assert set(curves.order) == {"descending", "ascending", "random"} and len(curves) == 4 * 3 * 101


def test_study_plots_and_report(study, tmp_path):
    store = ["--store", str(study)]
    runner = CliRunner()
    assert runner.invoke(cli, [*store, "plot", "summary", "-o", str(tmp_path / "s.png")]).exit_code == 0
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "test.npz", x=rng.normal(size=(30, 16)).astype(np.float32), y=rng.integers(0, 3, 30))
    result = runner.invoke(cli, [*store, "report", "--data", str(tmp_path / "test.npz"), "-o", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report" / "index.html").read_text()
    images = ["summary.png", "compare.png", "motifs.png", "percolation.png", "robustness_0.png", "robustness_1.png",
              "persistence.png", "locality.png"]
    for name in images:
        assert f'src="{name}"' in page and (tmp_path / "report" / name).read_bytes()[:4] == b"\x89PNG"
    assert page.count('<img src="') == len(images)
    summary = page.split('class="dataframe summary"')[1].split("</table>")[0]
    assert summary.count("<tr") == 1 + 4  # header and one row per checkpoint
    runs = page.split('class="dataframe runs"')[1].split("</table>")[0]
    assert "<th>seed</th>" in runs and "<th>model</th>" in runs and "<td>mlp</td>" in runs and "<td>0–1 (2)</td>" in runs
    assert f"netarchive {version('netarchive')} · LadybugDB {version('ladybug')} · archive {study}" in page
    assert re.search(r"· \d{4}-\d\d-\d\d \d\d:\d\d", page)
    glossary = page.split('class="dataframe glossary"')[1]
    assert "<td>p_c_measured</td>" in glossary and "(any other)" in glossary
    bad = runner.invoke(cli, [*store, "query", "summary", "--runs", "s0,nope"])
    assert bad.exit_code == 1 and "no run named 'nope'" in bad.output


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian package chromium)")
def test_report_images_load_in_chromium(study, tmp_path):
    CliRunner().invoke(cli, ["--store", str(study), "report", "-o", str(tmp_path / "report")])
    probe = tmp_path / "report" / "probe.html"
    probe.write_text((tmp_path / "report" / "index.html").read_text().replace(
        "</body>", "<script>window.onload=()=>{const i=[...document.images];document.title="
        "i.length+' images, '+i.filter(x=>x.complete&&x.naturalWidth>0).length+' loaded'}</script></body>"))
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    assert "<title>6 images, 6 loaded</title>" in dom


def test_summary_run_and_runs_together_give_both(study):
    import json

    result = CliRunner().invoke(cli, ["--store", str(study), "query", "summary", "--run", "s1", "--runs", "s0,s1", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [(row["run"], row["level"]) for row in json.loads(result.output)] == [("s0", 0), ("s0", 1), ("s1", 0), ("s1", 1)]


def test_parallel_summary_from_a_plain_script(study, tmp_path):
    """The README's example saved as a script, without an `if __name__ == "__main__":` guard."""
    import os
    import sys

    script = tmp_path / "study.py"
    script.write_text(
        "import netarchive\n"
        "print('script ran')\n"
        f"archive = netarchive.open({str(study)!r})\n"  # read-write, as the README's example
        "table = archive.summary(jobs=2)\n"
        "print(len(table), 'rows')\n"
        "archive.close()\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["script ran", "4 rows"]  # the script ran once, not again in each worker


def test_summary_columns_and_glossary(study):
    runner, store = CliRunner(), ["--store", str(study)]
    result = runner.invoke(cli, [*store, "query", "summary", "--columns", "accuracy,p_c_*", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "run,level,accuracy,p_c_molloy_reed,p_c_branching,p_c_measured,p_c_seed"
    bad = runner.invoke(cli, [*store, "query", "summary", "--columns", "sparsity,nope*"])
    assert bad.exit_code == 1 and "'nope*' matches no column" in bad.output and len(bad.output.splitlines()) == 1
    glossary = runner.invoke(cli, [*store, "query", "summary", "--glossary", "--format", "json"])
    meanings = {row["column"]: row["meaning"] for row in json.loads(glossary.output)}
    with netarchive.open(study, read_only=True) as archive:
        columns = set(archive.summary().columns)
    assert columns - {"accuracy", "seed", "model"} <= set(meanings) and "metrics stored" in meanings["(any other)"]
    assert "labels of the run" in meanings["(labels)"]
    assert all(meanings.values())
