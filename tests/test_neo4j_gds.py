"""Graph Data Science on an archived checkpoint (cypher/gds_*.cypher) against netarchive's own analyses:
GDS's weakly connected components equal `query components`, its maximum spanning trees equal each
layer's maximum spanning forest (netarchive/analysis/spanning.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from netarchive.analysis.spanning import forest_mask
from netarchive.cli import cli
from netarchive.cli.query import browser_params
from tests.conftest import random_checkpoint
from tests.neo4j_server import delete_test_runs, run_name

CYPHER = Path(__file__).resolve().parents[1] / "cypher"


def gds(store, name: str, **params):
    text, defaults = browser_params((CYPHER / f"{name}.cypher").read_text())
    return store.cypher(text, {**defaults, **params})


@pytest.fixture
def projected(neo4j_server):
    """A sparse checkpoint (isolated neurons, several components) archived and projected into GDS."""
    store = neo4j_server.store()
    run = run_name()
    checkpoint = random_checkpoint((64, 32, 16, 10), density=0.04, seed=0, run=run, level=3)
    store.write(checkpoint)
    summary = gds(store, "gds_project", run=run, level=3, graph=run)
    yield store, checkpoint, summary
    gds(store, "gds_drop", graph=run)
    delete_test_runs(store)
    store.close()


def test_projection_holds_the_checkpoint(projected):
    store, checkpoint, summary = projected
    assert summary.to_dict("records") == [{"graph": checkpoint.run, "neurons": checkpoint.neurons, "synapses": checkpoint.edges}]


def test_wcc_equals_query_components(projected, neo4j_server):
    store, checkpoint, _ = projected
    done = CliRunner().invoke(cli, [*neo4j_server.cli_args, "query", "components", "--run", checkpoint.run, "--level", "3",
                                    "--format", "json"])
    assert done.exit_code == 0, done.output
    ours = json.loads(done.output)[0]
    assert ours["isolated"] > 0 and ours["components"] > ours["isolated"] + 2  # several non-trivial components
    found = gds(store, "gds_wcc", graph=checkpoint.run).iloc[0]
    assert (found["components"], found["giant"], found["isolated"]) == (
        ours["components"], round(ours["giant_fraction"] * checkpoint.neurons), ours["isolated"])


def test_spanning_trees_equal_the_maximum_spanning_forests(projected):
    store, checkpoint, _ = projected
    for l, layer in enumerate(checkpoint.layers):
        mask = forest_mask(layer)
        found = gds(store, "gds_spanning_tree", graph=checkpoint.run, layer=l).iloc[0]
        assert found["edges"] == mask.sum()
        assert found["weight"] == pytest.approx(float(np.abs(layer.w[mask].astype(np.float64)).sum()), rel=1e-12)


def test_louvain_and_drop(projected):
    store, checkpoint, _ = projected
    components = gds(store, "gds_wcc", graph=checkpoint.run)["components"].iloc[0]
    found = gds(store, "gds_louvain", graph=checkpoint.run).iloc[0]
    assert components <= found["communities"] < checkpoint.neurons  # communities never span two components
    assert 0 < found["modularity"] < 1 and found["largest"] >= 2
    assert gds(store, "gds_drop", graph=checkpoint.run)["dropped"].tolist() == [checkpoint.run]
    assert gds(store, "gds_drop", graph=checkpoint.run).empty
    gds(store, "gds_project", run=checkpoint.run, level=3, graph=checkpoint.run)  # for the fixture's drop
