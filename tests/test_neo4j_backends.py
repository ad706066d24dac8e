"""Same answers on both backends: the digits demo run (examples/digits_imp.py, tiny settings) ingested into
an embedded archive and into the Neo4j server, then `ls`, every shared file of cypher/, `query summary`
and every `--write` property read back through Cypher give the same rows on both.

Whole nodes and paths come back in each backend's own shape (LadybugDB adds internal ``_ID``/``_LABEL``
keys), so the files' scalar columns are compared; the write-back is compared property by property.
"""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from netarchive.cli import cli
from netarchive.cli.query import browser_params
from tests.conftest import shared_queries
from tests.neo4j_server import delete_test_runs, run_name

WRITES = (
    ["query", "components", "--write"],
    ["query", "degrees", "--write"],
    ["query", "persistence", "--write"],
    ["query", "motifs", "--write"],
)
NEURON_PROPERTIES = ("component", "degree", "strength", "fan_in_pairs", "fan_out_pairs", "chains_through", "bias",
                     "channel", "y", "x")
PARAMS = {  # per file: a level where its answer is not empty (level 2 keeps 4 % of the weights)
    "checkpoint_layers": {"level": 1},
    "input_paths": {"level": 1, "y": 3, "x": 4, "limit": 100000},
    "isolated_neurons": {"level": 2},
    "neuron_neighbourhood": {"level": 1, "neuron_group": 1, "neuron": 3},
    "strongest_synapses": {"level": 1, "layer": 1},
    "surviving_synapses": {"from": 0, "to": 2},
}
NETWORK_ONLY = ("kernel_offsets", "skip_connections")
"""Files whose answer is empty on the MLP run here: tests/test_store_networks.py compares them on a CNN."""


@pytest.fixture(scope="module")
def digits(tmp_path_factory, digits_run):
    """``run``: the digits demo's files (tests/conftest.py: digits_run); ``archive``: the embedded archive."""
    out = tmp_path_factory.mktemp("digits")
    shutil.copytree(digits_run, out / "run")
    return out


@pytest.fixture(scope="module")
def both(digits, _neo4j_session):
    """(run, embedded CLI args, server CLI args): the run ingested and analysed with --write on both."""
    from tests.neo4j_server import unavailable

    server, reason = _neo4j_session
    if server is None:
        unavailable(reason)
    run = run_name()
    backends = (["--store", str(digits / "archive")], server.cli_args)
    for base in backends:
        for args in (["ingest", str(digits / "run"), "--run", run, "--input-shape", "1,8,8"], *WRITES,
                     ["eval", "--run", run, "--data", str(digits / "run" / "test.npz"), "--store-metrics"]):
            if args[0] == "query":
                args = [*args, "--run", run]
            done = CliRunner().invoke(cli, [*base, *args])
            assert done.exit_code == 0, (args, done.output)
    yield run, *backends
    with server.store() as store:
        delete_test_runs(store)


def on_both(both, *args) -> tuple[str, str]:
    run, embedded, server = both
    outputs = []
    for base in (embedded, server):
        done = CliRunner().invoke(cli, [*base, *args])
        assert done.exit_code == 0, (args, done.output)
        outputs.append(done.output)
    return tuple(outputs)


def cypher_on_both(both, text: str, **params) -> tuple[pd.DataFrame, pd.DataFrame]:
    run = both[0]
    args = ["query", "cypher", text, "--format", "json", "--param", f"run={run}"]
    args += [item for key, value in params.items() for item in ("--param", f"{key}={value}")]
    return tuple(pd.DataFrame(json.loads(output)) for output in on_both(both, *args))


def scalar_columns(frame: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in frame.columns if not frame[c].map(lambda v: isinstance(v, (dict, list))).any()]
    return frame[keep]


def test_ls_and_summary_are_the_same(both):
    run = both[0]
    embedded, server = on_both(both, "ls", "--run", run, "--format", "json")
    assert json.loads(embedded) == json.loads(server) and len(json.loads(server)) == 3
    assert "accuracy" in json.loads(server)[0]
    embedded, server = on_both(both, "query", "summary", "--run", run, "--format", "json")
    pd.testing.assert_frame_equal(pd.DataFrame(json.loads(embedded)), pd.DataFrame(json.loads(server)))


@pytest.mark.parametrize("path", shared_queries(), ids=lambda path: path.stem)
def test_every_cypher_file_gives_the_same_rows(both, path):
    text, defaults = browser_params(path.read_text())
    params = {key: PARAMS.get(path.stem, {}).get(key, value) for key, value in defaults.items() if key != "run"}
    embedded, server = (scalar_columns(frame) for frame in cypher_on_both(both, text, **params))
    assert (len(server) > 0 or path.stem in NETWORK_ONLY) and list(embedded.columns) == list(server.columns)
    if "ORDER BY" not in text:
        embedded, server = (frame.sort_values(list(frame.columns)).reset_index(drop=True) for frame in (embedded, server))
    pd.testing.assert_frame_equal(embedded, server, check_dtype=False, rtol=1e-6)


@pytest.mark.parametrize("level", [0, 2])
def test_write_back_is_the_same(both, level):
    columns = ", ".join(f"n.{name} AS {name}" for name in NEURON_PROPERTIES)
    embedded, server = cypher_on_both(
        both, f"MATCH (n:Neuron {{run: $run, level: $level}}) RETURN n.`group` AS layer, n.`index` AS i, {columns} "
              "ORDER BY layer, i", level=level)
    assert server["component"].notna().all() and server["fan_in_pairs"].notna().all()
    pd.testing.assert_frame_equal(embedded, server, check_dtype=False)
    embedded, server = cypher_on_both(
        both, "MATCH (a:Neuron {run: $run, level: $level})-[s:SYNAPSE]->(b:Neuron) "
              "RETURN a.`group` AS layer, a.`index` AS src, b.`index` AS dst, s.w AS w, s.in_msf AS in_msf "
              "ORDER BY layer, src, dst", level=level)
    assert server["in_msf"].sum() > 0
    pd.testing.assert_frame_equal(embedded, server, check_dtype=False)
