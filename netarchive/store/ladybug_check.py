"""``check`` of the embedded archive: its tables against the schema, every checkpoint against the counts
its Checkpoint node records, rows that belong to no checkpoint, and leftovers of interrupted writes.

Generic over the schema: the tables and columns come from the store's declarations, and every
relationship table between neurons is counted per checkpoint and layer against the Checkpoint property
named for it in ``COUNTED_RELATIONSHIPS``. Three passes over the data (neurons by checkpoint and layer,
relationships by both ends' checkpoints and layers), a few seconds per ten million synapses.
"""
from __future__ import annotations

from collections import defaultdict

import pandas as pd

from netarchive.store.base import Problem, damaged_problem, layer_mismatches, problem_table, unfinished_problem
from netarchive.store.ladybug_files import directory_problems

_KEY = 4294967296
"""A neuron's key is ``checkpoint_id * _KEY + global index``."""


def check_archive(store, repair: bool) -> pd.DataFrame:
    """The CHECK_FIELDS table of ``store`` (a LadybugStore), repaired first when ``repair``."""
    return problem_table(archive_problems(store), repair)


def archive_problems(store) -> list[Problem]:
    problems = directory_problems(store.path, store.read_only) + schema_problems(store)
    if any(problem.problem == "schema" for problem in problems):
        return problems  # the queries below rely on the schema
    from netarchive.store.ladybug import COUNTED_RELATIONSHIPS

    neurons = defaultdict(int)
    for checkpoint_id, layer, count in store._rows(f"MATCH (n:Neuron) RETURN n.id / {_KEY}, n.layer, count(*)"):
        neurons[checkpoint_id, layer] = count
    relationships = {table: _relationship_counts(store, table) for table in COUNTED_RELATIONSHIPS}
    return problems + checkpoint_problems(store, neurons, relationships) + stray_problems(store, neurons, relationships)


def schema_problems(store) -> list[Problem]:
    from netarchive.store.ladybug import _NODE_TABLES, _REL_TABLES, REBUILT, _statement, declared_columns

    problems = []
    tables = {name for (name,) in store._rows("CALL show_tables() RETURN name")}
    for table in (*_NODE_TABLES, *_REL_TABLES):
        if table not in tables:
            problems.append(Problem("schema", f"the table {table} is missing", "create it", store._ensure_schema))
            continue
        found = store._columns(table)
        for name, kind in declared_columns(table).items():
            if name not in found:
                problems.append(Problem("schema", f"the column {table}.{name} is missing", "add it", store._ensure_schema))
            elif found[name] != kind:
                problems.append(Problem("schema", f"the column {table}.{name} is {found[name]}, not {kind}"))
    for table in sorted(tables - {*_NODE_TABLES, *_REL_TABLES}):
        if table.endswith(REBUILT):
            def drop(table=table):
                with store._transaction():
                    store._run(_statement("DROP TABLE {table}", table=table))

            problems.append(Problem(
                "leftover-table", f"{table} is a synapse table that an interrupted rm or --replace rebuilt and never "
                "swapped in", "drop it", drop,
            ))
        else:
            problems.append(Problem("unknown-table", f"the table {table} is not part of the archive's schema"))
    return problems


def checkpoint_problems(store, neurons: dict, relationships: dict) -> list[Problem]:
    """Unfinished, damaged, unlinked and duplicate checkpoints."""
    from netarchive.store.ladybug import COUNTED_RELATIONSHIPS, _statement

    recorded = [column for pair in COUNTED_RELATIONSHIPS.values() for column in pair if column]
    rows = store._run(
        "MATCH (c:Checkpoint) OPTIONAL MATCH (r:Run)-[:HAS_CHECKPOINT]->(c) "
        "RETURN c.id AS id, c.run AS run, c.level AS level, c.incomplete AS incomplete, c.widths AS widths, "
        "r.name AS linked, " + ", ".join(_statement("c.{name} AS {name}", name=column) for column in recorded)
        + " ORDER BY run, level, id"
    ).rows_as_dict().get_all()
    problems, newest = [], {}
    for row in rows:
        checkpoint_id, run, level, widths = row["id"], row["run"], row["level"], list(row["widths"])
        remove = (lambda ids=[checkpoint_id]: store._remove(ids))
        if row["incomplete"]:
            problems.append(unfinished_problem(run, level, remove))
            continue
        wrong = layer_mismatches(widths, [neurons[checkpoint_id, layer] for layer in range(len(widths))], [], None)
        for table, (per_layer, total) in COUNTED_RELATIONSHIPS.items():
            counts = [relationships[table][checkpoint_id, layer, checkpoint_id, layer + 1] for layer in range(len(widths) - 1)]
            recorded = row[per_layer] if row[per_layer] is not None or not total else [row[total]]
            wrong += layer_mismatches(widths, widths, counts, recorded, f"{table} rows")
        if wrong:
            problems.append(damaged_problem(run, level, wrong, remove))
        elif row["linked"] is None:
            def link(checkpoint_id=checkpoint_id, run=run):
                with store._transaction():
                    store._run("MERGE (r:Run {name: $run}) WITH r MATCH (c:Checkpoint {id: $id}) CREATE (r)-[:HAS_CHECKPOINT]->(c)",
                               {"run": run, "id": checkpoint_id})

            problems.append(Problem("unlinked-checkpoint", "its run does not link to it", "link it", link, run, level))
        if (run, level) in newest:
            problems.append(Problem(
                "duplicate-checkpoint", "archived twice", "remove the older copy",
                lambda ids=[newest[run, level]]: store._remove(ids), run, level,
            ))
        newest[run, level] = checkpoint_id
    return problems


def stray_problems(store, neurons: dict, relationships: dict) -> list[Problem]:
    """Neurons of no checkpoint, relationships that join the wrong neurons, runs without checkpoints,
    and a checkpoint counter behind the ids in use."""
    from netarchive.store.ladybug import _statement

    problems = []
    known = {checkpoint_id for (checkpoint_id,) in store._rows("MATCH (c:Checkpoint) RETURN c.id")}
    owners = defaultdict(int)
    for (checkpoint_id, _), count in neurons.items():
        owners[checkpoint_id] += count
    for checkpoint_id in sorted(set(owners) - known):
        problems.append(Problem(
            "orphan-neurons", f"{owners[checkpoint_id]:,} neurons (and their synapses) belong to no checkpoint "
            f"(internal id {checkpoint_id})", "delete them", lambda ids=[checkpoint_id]: store._remove(ids),
        ))
    for table, counts in relationships.items():
        stray = sum(count for (a, la, b, lb), count in counts.items() if (a != b or lb != la + 1) and a in known)
        if stray:
            def delete(table=table):
                with store._transaction():
                    store._run(_statement(
                        "MATCH (a:Neuron)-[s:{table}]->(b:Neuron) WHERE a.id / 4294967296 <> b.id / 4294967296 "
                        "OR b.layer <> a.layer + 1 DELETE s", table=table,
                    ))

            problems.append(Problem(
                "stray-synapses", f"{stray:,} {table} rows join neurons of different checkpoints or of layers that "
                "are not consecutive", "delete them", delete,
            ))
    for (run,) in store._rows("MATCH (r:Run) WHERE NOT (r)-[:HAS_CHECKPOINT]->() RETURN r.name"):
        def delete_run(run=run):
            with store._transaction():
                store._run("MATCH (r:Run {name: $run}) WHERE NOT (r)-[:HAS_CHECKPOINT]->() DELETE r", {"run": run})

        problems.append(Problem("empty-run", "a run without checkpoints", "delete it", delete_run, run))
    counter = store._rows("MATCH (c:Counter {name: 'checkpoint'}) RETURN c.value")
    highest = max([*known, *owners], default=0)
    if highest > (counter[0][0] if counter else 0):
        def advance(highest=highest):
            with store._transaction():
                store._run("MERGE (c:Counter {name: 'checkpoint'}) SET c.value = $value", {"value": int(highest)})

        problems.append(Problem(
            "counter", f"the checkpoint counter is behind the ids in use (up to {highest}): a new checkpoint would "
            "reuse one", "advance it", advance,
        ))
    return problems


def _relationship_counts(store, table: str) -> dict[tuple[int, int, int, int], int]:
    """Rows of a relationship table between neurons, by (checkpoint, layer) of both ends."""
    from netarchive.store.ladybug import _statement

    counts = defaultdict(int)
    query = _statement(
        f"MATCH (a:Neuron)-[s:{{table}}]->(b:Neuron) RETURN a.id / {_KEY}, a.layer, b.id / {_KEY}, b.layer, count(*)",
        table=table,
    )
    for a, la, b, lb, count in store._rows(query):
        counts[a, la, b, lb] = count
    return counts
