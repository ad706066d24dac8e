"""Shared fixtures: small hand-made checkpoints, a fresh embedded archive per test, and the session's Neo4j
server (``neo4j_server``, tests/neo4j_server.py)."""
from __future__ import annotations

import numpy as np
import pytest

import netarchive
from netarchive.model import Checkpoint, Layer

pytest_plugins = ["tests.neo4j_server"]


def random_checkpoint(widths, density=0.5, seed=0, run="r", level=0, input_shape=None, metrics=None) -> Checkpoint:
    """A layered network of the given widths, each weight kept with probability ``density``."""
    rng = np.random.default_rng(seed)
    layers = []
    for l, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        weight = rng.normal(size=(n_out, n_in)).astype(np.float32)
        weight[rng.random(weight.shape) >= density] = 0
        layers.append(Layer.from_dense(f"fc{l}.weight", weight))
    return Checkpoint(run, level, tuple(layers), input_shape, dict(metrics or {}))


def edge_set(checkpoint: Checkpoint) -> set:
    """Every synapse as (layer, src, dst, w), for order-free comparisons."""
    return {
        (l, int(s), int(d), float(w))
        for l, layer in enumerate(checkpoint.layers)
        for s, d, w in zip(layer.src, layer.dst, layer.w)
    }


def shared_queries() -> list:
    """The files of cypher/ that run on both backends (schema.cypher and the gds_* files are Neo4j's only)."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "cypher"
    return sorted(path for path in folder.glob("*.cypher") if path.name != "schema.cypher" and not path.name.startswith("gds_"))


DIGITS_SETTINGS = ("--levels", "2", "--epochs", "1", "--fraction", "0.8")
"""examples/digits_imp.py on tiny settings: three levels, one epoch each."""


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """The OpenLTH files of examples/digits_imp.py with DIGITS_SETTINGS (and its ``test.npz``), made once per
    session in a subprocess as a user runs it; tests only read them."""
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path_factory.mktemp("digits") / "run"
    script = Path(__file__).resolve().parents[1] / "examples" / "digits_imp.py"
    subprocess.run([sys.executable, str(script), str(out), *DIGITS_SETTINGS], check=True, capture_output=True)
    return out


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread for a test that trains in its own process, as the demos' main() sets: small
    convolutions and matrix products run 5-20x slower on two threads of a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def archive(tmp_path):
    """A new, empty embedded archive, opened for writing."""
    with netarchive.open(tmp_path / "archive") as opened:
        yield opened


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "archive"
