"""Parquet export read back exactly as a user would: plain ``pandas.read_parquet(DIR/<dataset>)``."""
import shutil

import numpy as np
import pandas as pd
import pytest

import netarchive
from tests.conftest import random_checkpoint

LEVELS = 12  # levels 10 and 11 sort before 2 when read back as text


@pytest.fixture(scope="module")
def _exported_once(tmp_path_factory):
    """The archive and its export, made once for the module (the export with analyses is the slow part)."""
    folder = tmp_path_factory.mktemp("exported")
    with netarchive.open(folder / "archive") as archive:
        for level in range(LEVELS):
            archive.write(random_checkpoint([4, 3, 2], density=0.9 - 0.05 * level, seed=level, run="seed0", level=level,
                                            input_shape=(1, 2, 2), metrics={"accuracy": 0.5 + level / 100}))
        for run in ("_hidden", "a/b=c"):  # names a reader would skip or split into folders
            archive.write(random_checkpoint([4, 3, 2], seed=99, run=run, level=3))
        archive.export(folder / "out", analyses=True)
    return folder


@pytest.fixture
def exported(_exported_once, tmp_path):
    """``tmp_path/out``, the export of the archive ``tmp_path/archive``: each test gets its own copy."""
    shutil.copytree(_exported_once, tmp_path, dirs_exist_ok=True)
    return tmp_path / "out"


def _check_keys(frame: pd.DataFrame, name: str) -> None:
    assert frame["level"].dtype == np.int64, name
    assert pd.api.types.is_string_dtype(frame["run"]) and not isinstance(frame["run"].dtype, pd.CategoricalDtype), name
    seed0 = frame[frame["run"] == "seed0"]
    assert seed0.sort_values("level", kind="stable")["level"].unique().tolist() == list(range(LEVELS)), name
    assert set(frame["run"]) == {"seed0", "_hidden", "a/b=c"}, name


def test_every_dataset_reads_back_with_real_types(exported):
    for name in ("edges", "neurons"):
        _check_keys(pd.read_parquet(exported / name), name)
    analyses = sorted(p.name for p in (exported / "analyses").iterdir())
    for name in analyses:
        frame = pd.read_parquet(exported / "analyses" / name)
        if name == "locality":  # only the run with pixel inputs has it
            assert set(frame["run"]) == {"seed0"} and frame["level"].dtype == np.int64
            continue
        _check_keys(frame, name)
    listing = pd.read_parquet(exported / "checkpoints.parquet")
    assert listing["level"].dtype == np.int64


def test_one_schema_with_and_without_pixel_inputs(exported):
    neurons = pd.read_parquet(exported / "neurons")
    assert list(neurons.columns) == ["run", "level", "group", "index", "channel", "y", "x", "bias", "bn_weight", "bn_bias", "bn_mean", "bn_var"]
    pixels = neurons[(neurons.run == "seed0") & (neurons.level == 0) & (neurons.group == 0)].sort_values("index")
    assert pixels[["channel", "y", "x"]].astype(int).values.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1]]
    assert neurons[neurons.run == "_hidden"][["channel", "y", "x"]].isna().all().all()


def test_filters_read_one_run(exported):
    edges = pd.read_parquet(exported / "edges", filters=[("run", "==", "a/b=c")])
    assert set(edges.run) == {"a/b=c"} and set(edges.level) == {3}


def test_summary_of_the_export_is_that_of_query_summary(exported, tmp_path):
    exported_summary = pd.read_parquet(exported / "analyses" / "summary").sort_values(["run", "level"], ignore_index=True)
    with netarchive.open(tmp_path / "archive", read_only=True) as archive:
        asked = archive.summary().sort_values(["run", "level"], ignore_index=True)
    assert "accuracy" in exported_summary.columns
    assert exported_summary[exported_summary.run == "seed0"].accuracy.tolist() == pytest.approx([0.5 + l / 100 for l in range(LEVELS)])
    pd.testing.assert_frame_equal(exported_summary, asked[exported_summary.columns])
