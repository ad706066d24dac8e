"""``check`` of the embedded archive: its tables against the schema, every checkpoint against the counts
its Checkpoint node records, rows that belong to no checkpoint, and leftovers of interrupted writes.

Generic over the schema: the tables and columns come from the store's declarations, and every
relationship table between neurons is counted per checkpoint (and weight layer, for synapses) against the
Checkpoint properties named for it in ``COUNTED_RELATIONSHIPS``; a row counts for its checkpoint when
both ends are its neurons and, for a synapse, they lie in the source and target groups of its layer. One
pass over the neurons (by checkpoint and group) and one over each relationship table (by both ends'
checkpoints and groups), a few seconds per ten million synapses; and each checkpoint's packed synapses
against their properties (two reads of it, about as long as the rest).
"""
from __future__ import annotations

from collections import defaultdict

import pandas as pd

from netarchive.model.columns import layer_groups, parse_architecture
from netarchive.store.base import Problem, damaged_problem, layer_mismatches, problem_table, unfinished_problem
from netarchive.store.ladybug_files import directory_problems
from netarchive.store.ladybug_schema import COUNTED_RELATIONSHIPS, TABLES, declared_columns, statement

_KEY = 4294967296
"""A neuron's key is ``checkpoint_id * _KEY + global index``."""


def check_archive(store, repair: bool) -> pd.DataFrame:
    """The CHECK_FIELDS table of ``store`` (a LadybugStore), repaired first when ``repair``."""
    return problem_table(archive_problems(store), repair)


def archive_problems(store) -> list[Problem]:
    problems = directory_problems(store.path, store.read_only) + schema_problems(store)
    if any(problem.problem == "schema" for problem in problems):
        return problems  # the queries below rely on the schema
    neurons = defaultdict(int)
    for checkpoint_id, group, count in store._rows(f"MATCH (n:Neuron) RETURN n.id / {_KEY}, n.`group`, count(*)"):
        neurons[checkpoint_id, group] = count
    layouts = {
        checkpoint_id: layer_groups(parse_architecture(architecture), len(names))
        for checkpoint_id, names, architecture in store._rows("MATCH (c:Checkpoint) RETURN c.id, c.layer_names, c.architecture")
    }
    relationships = {table: _relationship_counts(store, table, layouts) for table in COUNTED_RELATIONSHIPS}
    return (problems + checkpoint_problems(store, neurons, relationships) + packed_problems(store)
            + stray_problems(store, neurons, relationships, layouts))


def schema_problems(store) -> list[Problem]:
    from netarchive.store.ladybug import REBUILT

    problems = []
    tables = {name for (name,) in store._rows("CALL show_tables() RETURN name")}
    for table in TABLES:
        if table not in tables:
            problems.append(Problem("schema", f"the table {table} is missing", "create it", store._ensure_schema))
            continue
        found = store._columns(table)
        for name, kind in declared_columns(table).items():
            if name not in found:
                problems.append(Problem("schema", f"the column {table}.{name} is missing", "add it", store._ensure_schema))
            elif found[name] != kind:
                problems.append(Problem("schema", f"the column {table}.{name} is {found[name]}, not {kind}"))
    for table in sorted(tables - set(TABLES)):
        if table.endswith(REBUILT):
            def drop(table=table):
                with store._transaction():
                    store._run(statement("DROP TABLE {table}", table=table))

            problems.append(Problem(
                "leftover-table", f"{table} is a synapse table that an interrupted rm or --replace rebuilt and never "
                "swapped in", "drop it", drop,
            ))
        else:
            problems.append(Problem("unknown-table", f"the table {table} is not part of the archive's schema"))
    return problems


def checkpoint_problems(store, neurons: dict, relationships: dict) -> list[Problem]:
    """Unfinished, damaged, unlinked and duplicate checkpoints."""
    recorded = [column for pair in COUNTED_RELATIONSHIPS.values() for column in pair if column]
    rows = store._run(
        "MATCH (c:Checkpoint) OPTIONAL MATCH (r:Run)-[:HAS_CHECKPOINT]->(c) "
        "RETURN c.id AS id, c.run AS run, c.level AS level, c.incomplete AS incomplete, c.widths AS widths, "
        "c.layer_names AS layer_names, "
        "r.name AS linked, " + ", ".join(statement("c.{name} AS {name}", name=column) for column in recorded)
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
            counts = relationships[table].get(checkpoint_id) or [0] * (len(row["layer_names"]) if per_layer else 1)
            if per_layer is None:
                recorded = None if row[total] is None else [row[total]]
                counts = [sum(counts)]
            else:
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


def packed_problems(store) -> list[Problem]:
    """Complete checkpoints whose ``SYNAPSE.packed`` values (ladybug_packing.py, what reads use) disagree
    with the synapses' own properties; clearing them makes reads use the properties."""
    problems = []
    rows = store._rows("MATCH (c:Checkpoint) WHERE c.incomplete IS NULL RETURN c.id, c.run, c.level, c.widths, "
                       "c.layer_names, c.architecture, c.edges ORDER BY c.run, c.level")
    for checkpoint_id, run, level, widths, names, architecture, edges in rows:
        wrong = store._packed_disagreements(checkpoint_id, widths, parse_architecture(architecture), len(names), edges)
        if wrong:
            def clear(checkpoint_id=checkpoint_id):
                with store._transaction():
                    store._run("MATCH (a:Neuron)-[s:SYNAPSE]->() WHERE a.id >= $lo AND a.id < $hi SET s.packed = NULL",
                               {"lo": checkpoint_id * _KEY, "hi": (checkpoint_id + 1) * _KEY})

            problems.append(Problem(
                "packed-synapses", f"the packed column of {wrong:,} synapse(s) disagrees with their properties",
                "clear the packed column (reads then use the properties)", clear, run, level,
            ))
    return problems


def stray_problems(store, neurons: dict, relationships: dict, layouts: dict) -> list[Problem]:
    """Neurons of no checkpoint, relationships that join the wrong neurons, runs without checkpoints,
    and a checkpoint counter behind the ids in use."""
    problems = []
    known = set(layouts)
    owners = defaultdict(int)
    for (checkpoint_id, _), count in neurons.items():
        owners[checkpoint_id] += count
    for checkpoint_id in sorted(set(owners) - known):
        problems.append(Problem(
            "orphan-neurons", f"{owners[checkpoint_id]:,} neurons (and their synapses) belong to no checkpoint "
            f"(internal id {checkpoint_id})", "delete them", lambda ids=[checkpoint_id]: store._remove(ids),
        ))
    for table, counts in relationships.items():
        stray = counts.stray
        if stray:
            def delete(table=table):
                with store._transaction():
                    _delete_stray(store, table, layouts)

            where = "of layers whose groups they do not join" if COUNTED_RELATIONSHIPS[table][0] else "outside the checkpoint"
            problems.append(Problem(
                "stray-synapses", f"{stray:,} {table} rows join neurons of different checkpoints or {where}",
                "delete them", delete,
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


class _Counts(dict):
    """Rows of a relationship table that belong to each checkpoint (id -> per weight layer, or one total),
    and ``stray``, how many join neurons of different checkpoints or lie outside their layer's groups."""

    stray: int = 0


def _relationship_counts(store, table: str, layouts: dict) -> _Counts:
    per_layer = COUNTED_RELATIONSHIPS[table][0] is not None
    layer = "s.layer" if per_layer else "0"
    query = statement(
        f"MATCH (a:Neuron)-[s:{{table}}]->(b:Neuron) "
        f"RETURN a.id / {_KEY}, b.id / {_KEY}, {layer}, a.`group`, b.`group`, count(*)",
        table=table,
    )
    counts = _Counts()
    for a, b, l, ga, gb, count in store._rows(query):
        if a not in layouts:
            continue  # orphans: removed with their neurons
        sources, targets = layouts[a]
        inside = a == b and (not per_layer or (l is not None and 0 <= l < len(sources) and (ga, gb) == (sources[l], targets[l])))
        if not inside:
            counts.stray += count
            continue
        found = counts.setdefault(a, [0] * (len(sources) if per_layer else 1))
        found[l] += count
    return counts


def _delete_stray(store, table: str, layouts: dict) -> None:
    """Delete the rows :func:`_relationship_counts` calls stray, inside the caller's transaction."""
    store._run(statement(f"MATCH (a:Neuron)-[s:{{table}}]->(b:Neuron) WHERE a.id / {_KEY} <> b.id / {_KEY} DELETE s", table=table))
    if COUNTED_RELATIONSHIPS[table][0] is None:
        return
    for checkpoint_id, (sources, targets) in layouts.items():
        bounds = {"lo": checkpoint_id * _KEY, "hi": (checkpoint_id + 1) * _KEY}
        store._run(statement("MATCH (a:Neuron)-[s:{table}]->() WHERE a.id >= $lo AND a.id < $hi "
                             "AND (s.layer IS NULL OR s.layer < 0 OR s.layer >= $layers) DELETE s", table=table),
                   {**bounds, "layers": len(sources)})
        for l, (source, target) in enumerate(zip(sources, targets)):
            store._run(statement("MATCH (a:Neuron)-[s:{table}]->(b:Neuron) WHERE a.id >= $lo AND a.id < $hi AND s.layer = $layer "
                                 "AND (a.`group` <> $source OR b.`group` <> $target) DELETE s", table=table),
                       {**bounds, "layer": l, "source": source, "target": target})
