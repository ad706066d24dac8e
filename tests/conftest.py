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


@pytest.fixture
def archive(tmp_path):
    """A new, empty embedded archive, opened for writing."""
    with netarchive.open(tmp_path / "archive") as opened:
        yield opened


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "archive"
