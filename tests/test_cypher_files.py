"""The queries of cypher/ on the embedded archive, and the ``:param`` lines of ``query cypher -f``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from netarchive.cli import cli
from netarchive.cli.query import browser_params
from netarchive.errors import InputError
from tests.conftest import random_checkpoint, shared_queries

ROOT = Path(__file__).resolve().parents[1]
QUERIES = shared_queries()


def test_browser_params():
    text, params = browser_params(":param run => 'r1';\n:param level => 3;\n:param w => -0.5\n:param ok => true;\n"
                                  "// comment\nMATCH (c:Checkpoint {run: $run}) RETURN c;\n")
    assert params == {"run": "r1", "level": 3, "w": -0.5, "ok": True}
    assert text == "// comment\nMATCH (c:Checkpoint {run: $run}) RETURN c"
    with pytest.raises(InputError, match="only string, number"):
        browser_params(":param xs => [1, 2];\nRETURN 1")
    with pytest.raises(InputError, match="Browser command"):
        browser_params(":play movies\nRETURN 1")


@pytest.fixture
def two_levels(archive):
    checkpoints = [
        random_checkpoint((16, 8, 6, 4), density=0.5 - 0.2 * level, seed=level, run="r1", level=level, input_shape=(1, 4, 4))
        for level in (0, 1)
    ]
    for checkpoint in checkpoints:
        archive.write(checkpoint)
    return archive, checkpoints


def _run(archive, name, **overrides):
    text, params = browser_params((ROOT / "cypher" / f"{name}.cypher").read_text())
    return archive.cypher(text, **{**params, **overrides})


def test_every_query_runs_on_the_embedded_archive(two_levels):
    archive, _ = two_levels
    for path in QUERIES:
        _run(archive, path.stem)


def test_query_values(two_levels):
    archive, (a, b) = two_levels
    layers = _run(archive, "checkpoint_layers")
    assert layers["neurons"].tolist() == [16, 8, 6, 4]
    assert layers["synapses_out"].tolist() == [layer.edges for layer in a.layers] + [0]
    strongest = _run(archive, "strongest_synapses", layer=1, limit=3)
    expected = np.sort(np.abs(a.layers[1].w))[::-1][:3]
    assert np.allclose(np.abs(strongest["w"]), expected)
    surviving = _run(archive, "surviving_synapses")
    both = [int(((la.dense() != 0) & (lb.dense() != 0)).sum()) for la, lb in zip(a.layers, b.layers)]
    flips = [int(((la.dense() * lb.dense()) < 0).sum()) for la, lb in zip(a.layers, b.layers)]
    kept = [i for i, count in enumerate(both) if count]
    assert surviving["surviving"].tolist() == [both[i] for i in kept]
    assert surviving["sign_flips"].tolist() == [flips[i] for i in kept]
    isolated = _run(archive, "isolated_neurons", level=1)
    degree = b.adjacency().getnnz(axis=0) + b.adjacency().getnnz(axis=1)
    per_layer = np.bincount(b.neuron_layers()[degree == 0], minlength=4)
    assert dict(zip(isolated["group"], isolated["isolated"])) == {l: c for l, c in enumerate(per_layer) if c}
    paths = _run(archive, "input_paths", y=1, x=2, limit=1000)
    assert set(paths["hops"]) <= {3}


def test_query_cypher_file_on_the_cli(two_levels, store_path):
    archive, _ = two_levels
    archive.close()
    done = CliRunner().invoke(cli, ["--store", str(store_path), "query", "cypher", "-f",
                                    str(ROOT / "cypher" / "checkpoint_layers.cypher"), "--param", "level=1", "--format", "csv"])
    assert done.exit_code == 0, done.output
    assert done.output.splitlines()[0] == "group,neurons,synapses_out,min_w,max_w"


def test_browser_link_round_trips():
    from urllib.parse import parse_qs, urlparse

    done = CliRunner().invoke(cli, ["query", "cypher", "-f", str(ROOT / "cypher" / "strongest_synapses.cypher"),
                                    "--param", "run=it's", "--param", "layer=2", "--browser-link"])
    assert done.exit_code == 0, done.output
    link = urlparse(done.output.strip())
    assert (link.scheme, link.netloc, link.path) == ("http", "localhost:7474", "/browser/")
    query = parse_qs(link.query)
    assert query["cmd"] == ["edit"]
    text, params = browser_params(query["arg"][0])
    assert params == {"run": "it's", "level": 0, "layer": 2, "limit": 25}
    assert "ORDER BY abs(s.w) DESC" in text


def test_init_on_the_embedded_archive(store_path):
    done = CliRunner().invoke(cli, ["--store", str(store_path), "init"])
    assert done.exit_code == 0 and "archive ready" in done.output
    assert (store_path / "netarchive.json").exists()


def test_browser_guide_is_served_with_cors(tmp_path):
    import threading
    import urllib.request

    from netarchive.browser_guide import guide_html, serve

    content = guide_html(ROOT / "cypher")
    assert content.count("<slide") == len(list((ROOT / "cypher").glob("*.cypher"))) + 1
    assert "MATCH (a:Neuron {run: $run, level: $level})-[s:SYNAPSE {layer: $layer}]-&gt;(b:Neuron)" in content
    httpd = serve(content, 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{httpd.server_address[1]}/netarchive.html", timeout=10) as answer:
            assert answer.headers["Access-Control-Allow-Origin"] == "*"
            assert answer.read().decode() == content
        preflight = urllib.request.Request(f"http://127.0.0.1:{httpd.server_address[1]}/netarchive.html", method="OPTIONS",
                                           headers={"Origin": "http://127.0.0.1:7474", "Access-Control-Request-Headers": "x-ajax"})
        with urllib.request.urlopen(preflight, timeout=10) as answer:  # Browser's fetch asks first
            assert answer.status == 204 and answer.headers["Access-Control-Allow-Origin"] == "*"
            assert answer.headers["Access-Control-Allow-Headers"] == "x-ajax"
    finally:
        httpd.shutdown()
        httpd.server_close()
    done = CliRunner().invoke(cli, ["browser-guide", "--write", str(tmp_path / "guide.html")])
    assert done.exit_code == 0 and (tmp_path / "guide.html").read_text() == content
