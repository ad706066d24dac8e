"""The command line: every error is one line and a non-zero exit, and the archive is unchanged."""
import json

import pytest
import torch
from click.testing import CliRunner

from netarchive.cli import cli
from tests.test_loaders import W1, W2, openlth_run


@pytest.fixture
def run_cli(tmp_path):
    store = str(tmp_path / "archive")

    def invoke(*args, input=None):
        return CliRunner().invoke(cli, ["--store", store, *map(str, args)], input=input)

    return invoke


def listing(run_cli):
    result = run_cli("ls", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_ingest_ls_query_rm(run_cli, tmp_path):
    run = openlth_run(tmp_path / "imp", levels=3)
    result = run_cli("ingest", run, "--run", "seed0", "--meta", "seed=0", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "run,level,layers,neurons,edges,sparsity,architecture_source,accuracy,loss"
    rows = listing(run_cli)
    assert [(r["level"], r["edges"], r["accuracy"]) for r in rows] == [(0, 6, 0.9), (1, 5, 0.8), (2, 5, 0.7)]
    assert {r["architecture_source"] for r in rows} == {"assumed sequential"}
    result = run_cli("query", "cypher", "MATCH (r:Run {name: $run}) RETURN r.seed AS seed", "--param", "run=seed0", "--format", "json")
    assert json.loads(result.output) == [{"seed": "0"}]
    table = run_cli("query", "cypher", "MATCH (c:Checkpoint) RETURN c.level AS level ORDER BY level")
    assert table.exit_code == 0 and "level" in table.output
    assert run_cli("rm", "--run", "seed0", "--level", "1", input="n\n").exit_code == 1  # declined
    assert len(listing(run_cli)) == 3
    result = run_cli("rm", "--run", "seed0", "--level", "1", "--yes")
    assert result.exit_code == 0 and "removed 1 checkpoint" in result.output
    assert [r["level"] for r in listing(run_cli)] == [0, 2]


def test_output_to_files(run_cli, tmp_path):
    torch.save({"a.weight": torch.tensor(W1), "b.weight": torch.tensor(W2)}, tmp_path / "level_0.pt")
    assert run_cli("ingest", tmp_path / "level_0.pt", "--run", "r").exit_code == 0
    assert run_cli("ls", "-o", tmp_path / "ls.csv").exit_code == 0
    assert (tmp_path / "ls.csv").read_text().startswith(
        "run,level,layers,neurons,edges,sparsity,architecture_source\nr,0,2,6,6,0.25,assumed sequential\n")
    assert run_cli("ls", "--format", "parquet", "-o", tmp_path / "ls.parquet").exit_code == 0
    import pandas as pd

    assert pd.read_parquet(tmp_path / "ls.parquet").edges.tolist() == [6]
    result = run_cli("ls", "--format", "parquet")
    assert result.exit_code == 1 and "give -o FILE.parquet" in result.output
    assert run_cli("ls", "-o", tmp_path / "ls.txt").exit_code == 0
    assert "run ┃ level ┃ layers" in (tmp_path / "ls.txt").read_text()  # the table, as printed


def test_an_output_suffix_without_a_format_is_refused(run_cli, tmp_path):
    torch.save({"a.weight": torch.tensor(W1)}, tmp_path / "level_0.pt")
    assert run_cli("ingest", tmp_path / "level_0.pt", "--run", "r").exit_code == 0
    for name in ("ls.xlsx", "ls"):
        one_line_error(run_cli("ls", "-o", tmp_path / name), f"cannot tell the format of {tmp_path / name}")
        assert not (tmp_path / name).exists()
    one_line_error(run_cli("query", "components", "--run", "r", "-o", tmp_path / "c.xlsx"), "use .csv, .json")
    assert run_cli("ls", "--format", "csv", "-o", tmp_path / "ls.xlsx").exit_code == 0  # asked for explicitly


def one_line_error(result, expected):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.output
    assert "Traceback" not in result.output


def test_bad_inputs_are_one_line_errors_and_change_nothing(run_cli, tmp_path):
    torch.save({"a.weight": torch.tensor(W1)}, tmp_path / "level_0.pt")
    assert run_cli("ingest", tmp_path / "level_0.pt", "--run", "r").exit_code == 0
    before = listing(run_cli)
    (tmp_path / "corrupt.pt").write_bytes(b"\x00garbage")
    torch.save({"a.weight": torch.tensor([[float("nan")]])}, tmp_path / "nan.pt")
    torch.save({"a.weight": torch.tensor(W1), "b.weight": torch.ones(1, 5)}, tmp_path / "shape.pt")
    (tmp_path / "m.json").write_text("[1, 2]")
    cases = [
        (("ingest", tmp_path / "missing.pt", "--run", "r", "--level", "1"), "no such file or directory"),
        (("ingest", tmp_path / "corrupt.pt", "--run", "r", "--level", "1"), "not a readable PyTorch checkpoint"),
        (("ingest", tmp_path / "nan.pt", "--run", "r", "--level", "1"), "a.weight contains NaN"),
        (("ingest", tmp_path / "shape.pt", "--run", "r", "--level", "1"), "shapes do not chain"),
        (("ingest", tmp_path / "level_0.pt", "--run", "r"), "already has level(s) 0"),
        (("ingest", tmp_path / "level_0.pt", "--run", "r", "--level", "2", "--input-shape", "1,2,3,4"), "must be C,H,W"),
        (("ingest", tmp_path / "level_0.pt", "--run", "r", "--level", "2", "--input-shape", "1,2,2"), "has 4 pixels"),
        (("ingest", tmp_path / "level_0.pt", "--run", "r", "--level", "2", "--metrics", tmp_path / "m.json"), "JSON object of numbers"),
        (("ls", "--run", "nope"), "no run named 'nope'"),
        (("rm", "--run", "nope", "--yes"), "no run named 'nope'"),
        (("rm", "--run", "r", "--level", "9", "--yes"), "run 'r' has no level 9"),
        (("query", "cypher", "MATCH (n RETURN n"), "Parser exception"),
        (("query", "cypher", "MATCH (n:Neuron) DETACH DELETE n"), "Cypher runs read-only here"),
        (("query", "cypher", "CREATE (:Run {name: 'x'})"), "use an analysis's --write"),
        (("query", "cypher", "RETURN $x", "--param", "x"), "is not KEY=VALUE"),
        (("export", tmp_path / "out", "--run", "nope"), "no run named 'nope'"),
    ]
    for args, expected in cases:
        one_line_error(run_cli(*args), expected)
    assert listing(run_cli) == before


def test_unreachable_neo4j_uri_is_one_line(tmp_path):
    import socket

    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(cli, ["--store", f"neo4j://127.0.0.1:{port}", "--password", "x", "ls"])
    one_line_error(result, "cannot reach a Neo4j server")


def test_reading_commands_on_a_new_location(tmp_path):
    result = CliRunner().invoke(cli, ["--store", str(tmp_path / "none"), "ls"])
    one_line_error(result, "no archive at")


def test_output_mistakes_are_refused_before_anything_is_written(run_cli, tmp_path):
    torch.save({"a.weight": torch.tensor(W1)}, tmp_path / "level_0.pt")
    assert run_cli("ingest", tmp_path / "level_0.pt", "--run", "r").exit_code == 0
    before = listing(run_cli)
    missing = tmp_path / "none" / "out.csv"
    cases = [
        (("ingest", tmp_path / "level_0.pt", "--run", "s", "--format", "parquet"), "give -o FILE.parquet"),
        (("ingest", tmp_path / "level_0.pt", "--run", "s", "-o", missing), f"there is no directory {missing.parent}"),
        (("ingest", tmp_path / "level_0.pt", "--run", "s", "--level", "-1"), "--level -1: a level counts pruning rounds"),
        (("query", "components", "--run", "r", "--write", "--format", "parquet"), "give -o FILE.parquet"),
        (("plot", "degrees", "--run", "r", "-o", tmp_path / "none" / "d.png"), "there is no directory"),
        (("rm", "--run", "r", "--level", "9"), "run 'r' has no level 9"),  # refused before asking
    ]
    for args, expected in cases:
        one_line_error(run_cli(*args), expected)
    assert listing(run_cli) == before
    assert not missing.parent.exists()


def test_cypher_nodes_print_compactly(run_cli, tmp_path):
    torch.save({"a.weight": torch.tensor(W1)}, tmp_path / "level_0.pt")
    assert run_cli("ingest", tmp_path / "level_0.pt", "--run", "r").exit_code == 0
    statement = "MATCH (n:Neuron {`group`: 1, `index`: 0})<-[s:SYNAPSE]-(m) RETURN n, s ORDER BY m.`index` LIMIT 1"
    for fmt in ("table", "csv"):
        result = run_cli("query", "cypher", statement, "--format", fmt)
        assert result.exit_code == 0, result.output
        assert "(:Neuron {run: 'r', level: 0, group: 1, index: 0})" in result.output
        assert "[:SYNAPSE {w: " in result.output and "_ID" not in result.output and "_LABEL" not in result.output


def test_cypher_parameter_left_out_is_an_error_not_an_empty_answer(run_cli, tmp_path):
    torch.save({"a.weight": torch.tensor(W1)}, tmp_path / "level_0.pt")
    assert run_cli("ingest", tmp_path / "level_0.pt", "--run", "r").exit_code == 0
    statement = "MATCH (c:Checkpoint {run: $run}) WHERE c.level >= $level // not $here\nRETURN c.level AS level, '$nor here' AS s"
    one_line_error(run_cli("query", "cypher", statement, "--param", "run=r"), "uses $level: give it with --param level=VALUE")
    result = run_cli("query", "cypher", statement, "--param", "run=r", "--param", "level=0", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.output) == [{"level": 0, "s": "$nor here"}]


def test_archive_held_by_a_writer_in_another_process(run_cli, tmp_path):
    import subprocess
    import sys

    torch.save({"a.weight": torch.tensor(W1)}, tmp_path / "level_0.pt")
    assert run_cli("ingest", tmp_path / "level_0.pt", "--run", "r").exit_code == 0
    before = listing(run_cli)
    holder = "import netarchive, sys\nwith netarchive.open(sys.argv[1]):\n print('open', flush=True)\n sys.stdin.read()"
    writer = subprocess.Popen([sys.executable, "-c", holder, str(tmp_path / "archive")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "open"
        assert listing(run_cli) == before  # reading commands open beside the writer
        assert run_cli("query", "components", "--run", "r", "--format", "csv").exit_code == 0
        for args in (("rm", "--run", "r", "--yes"), ("set-activation", "tanh", "--run", "r"),
                     ("ingest", tmp_path / "level_0.pt", "--run", "s"), ("query", "components", "--run", "r", "--write")):
            one_line_error(run_cli(*args), "is in use by another netarchive")
    finally:
        writer.communicate("", timeout=60)
    assert listing(run_cli) == before


def test_ls_of_an_empty_archive_says_where_it_is(run_cli, tmp_path):
    assert run_cli("init").exit_code == 0
    result = run_cli("ls")
    assert result.exit_code == 0 and result.output == f"archive: {tmp_path / 'archive'}\n(no rows)\n"


def test_counts_are_integers_in_every_format(run_cli, tmp_path):
    import pandas as pd

    torch.save({"a.weight": torch.tensor(W1), "b.weight": torch.tensor(W2)}, tmp_path / "level_0.pt")
    assert run_cli("ingest", tmp_path / "level_0.pt", "--run", "r", "--input-shape", "1,1,3").exit_code == 0
    percolation = ("query", "percolation", "--run", "r", "--points", "3")
    rows = json.loads(run_cli(*percolation, "--format", "json").output)
    assert all(isinstance(row["components"], int) and isinstance(row["edges_kept"], int) for row in rows)
    csv = run_cli(*percolation, "--format", "csv").output.splitlines()
    assert csv[0].split(",")[-2] == "components" and all(not line.split(",")[-2].endswith(".0") for line in csv[1:])
    assert run_cli(*percolation, "-o", tmp_path / "p.parquet").exit_code == 0
    assert pd.read_parquet(tmp_path / "p.parquet")["components"].dtype == "int64"
    summary = json.loads(run_cli("query", "locality", "--run", "r", "--summary", "--format", "json").output)
    assert all(isinstance(row["in_degree_min"], int) and isinstance(row["in_degree_max"], int) for row in summary)
