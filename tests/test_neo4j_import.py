"""``export --neo4j-import``: typed CSV files for neo4j-admin, read back and compared with the archive."""
from __future__ import annotations

import csv

import numpy as np
import pandas as pd
from click.testing import CliRunner

from netarchive.cli import cli
from netarchive.neo4j_import import import_command
from tests.conftest import edge_set, random_checkpoint


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_import_files(archive, store_path, tmp_path):
    a = random_checkpoint((16, 8, 4), density=0.5, seed=0, run="r1", level=0, input_shape=(1, 4, 4), metrics={"acc": 0.9})
    b = random_checkpoint((16, 8, 4), density=0.3, seed=1, run="r1", level=1)
    archive.write(a)
    archive.write(b)
    archive.close()
    out = tmp_path / "import"
    done = CliRunner().invoke(cli, ["--store", str(store_path), "export", str(out), "--neo4j-import"])
    assert done.exit_code == 0, done.output
    assert "neo4j-admin database import full neo4j" in done.output and "/import/import/" in done.output

    assert _rows(out / "synapses.header.csv") == [[":START_ID(Neuron)", ":END_ID(Neuron)", "w:float", "layer:long", "ky:long", "kx:long"]]
    header = _rows(out / "checkpoints.header.csv")[0]
    assert header[:3] == [":ID(Checkpoint)", "run", "level:long"] and "widths:long[]" in header and header[-1] == "acc:double"
    checkpoints = _rows(out / "checkpoints.csv")
    assert [row[:5] for row in checkpoints] == [["0", "r1", "0", "28", str(a.edges)], ["1", "r1", "1", "28", str(b.edges)]]
    assert checkpoints[0][7:9] == ["16;8;4", "1;4;4"] and checkpoints[1][8] == ""
    assert _rows(out / "has_checkpoint.csv") == [["r1", "0"], ["r1", "1"]]
    assert _rows(out / "runs.header.csv") == [["name:ID(Run)", "activation"]] and _rows(out / "runs.csv") == [["r1", "relu"]]

    for number, checkpoint in enumerate((a, b)):
        neurons = pd.read_csv(out / f"neurons-{number}.csv", header=None, names=["id", "run", "level", "layer", "index", "channel", "y", "x", "bias", "bn_weight", "bn_bias", "bn_mean", "bn_var"])
        assert len(neurons) == checkpoint.neurons and neurons["id"].is_unique
        pixels = neurons[neurons["layer"] == 0]
        if checkpoint.input_shape:
            assert (pixels["y"] * 4 + pixels["x"]).tolist() == list(range(16))
        else:
            assert neurons["y"].isna().all()
        position = dict(zip(neurons["id"], zip(neurons["layer"], neurons["index"])))
        synapses = pd.read_csv(out / f"synapses-{number}.csv", header=None, names=["from", "to", "w", "layer", "ky", "kx"])
        back = {(position[s][0], position[s][1], position[t][1], float(np.float32(w))) for s, t, w, *_ in synapses.itertuples(index=False)}
        assert synapses["layer"].tolist() == synapses["from"].map(lambda s: position[s][0]).tolist() and synapses["ky"].isna().all()
        assert back == edge_set(checkpoint)


def test_import_command_quotes_paths():
    command = import_command("/data/my import", database="archive")
    assert command.startswith("neo4j-admin database import full archive --overwrite-destination")
    assert "'--nodes=Neuron=/data/my import/neurons.header.csv,/data/my import/neurons-[0-9]+.csv'" in command


def test_import_files_carry_biases_and_activation(archive, store_path, tmp_path):
    from netarchive.model import Checkpoint, Layer

    first = Layer.from_dense("a.weight", np.array([[1.0, 0.0], [0.0, 2.0]]), bias=np.array([0.5, -0.25]))
    second = Layer.from_dense("b.weight", np.array([[1.0, 1.0]]))
    archive.write(Checkpoint("r", 0, (first, second), activation="tanh"))
    archive.close()
    done = CliRunner().invoke(cli, ["--store", str(store_path), "export", str(tmp_path / "out"), "--neo4j-import"])
    assert done.exit_code == 0, done.output
    assert _rows(tmp_path / "out" / "runs.csv") == [["r", "tanh"]]
    assert [row[8] for row in _rows(tmp_path / "out" / "neurons-0.csv")] == ["", "", "0.5", "-0.25", ""]
