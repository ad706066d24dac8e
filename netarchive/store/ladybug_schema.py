"""The tables of the embedded archive, the statements that name them, and the upgrade of older archives.

Tables (cypher/schema.md has the same schema as Cypher users see it)::

    (:Run)-[:HAS_CHECKPOINT]->(:Checkpoint {architecture: JSON, layer_synapses, connections, ...})
    (:Neuron {group, index, channel, y, x, bias, bn_weight, bn_bias, bn_mean, bn_var})
    (:Neuron)-[:SYNAPSE {w, layer, ky, kx, packed}]->(:Neuron) one per surviving kernel weight
    (:Neuron)-[:CONNECTION {kind}]->(:Neuron)                   add, concat, flatten (no weight)

Upgrading (:func:`upgrade`, on every read-write open, each step only when needed and in its own
transaction, because LadybugDB 0.22 fails an ``ALTER TABLE`` that shares a write transaction with other
updates): ``Neuron.layer`` (the neuron group, as archives before issue 14 called it) is renamed to
``group``; a synapse table without ``layer`` is rebuilt with each synapse's weight layer (in those
archives, the group of its source neuron), copied in bulk and swapped in as ``rm`` does (ladybug.py), so
a crash leaves the old table or the new one; missing tables and columns are added. Synapses archived
before ``packed`` keep it null and are read from their other columns (ladybug_packing.py).
"""
from __future__ import annotations

import re

import pyarrow as pa

from netarchive.errors import StoreError

NODE_TABLES = {
    "Run": "name STRING PRIMARY KEY, activation STRING",
    "Checkpoint": (
        "id INT64 PRIMARY KEY, run STRING, level INT64, neurons INT64, edges INT64, sparsity DOUBLE, "
        "layer_names STRING[], widths INT64[], input_shape INT64[], written STRING, layer_synapses INT64[], "
        "incomplete BOOL, architecture_source STRING, architecture STRING, connections INT64, curve_metric STRING[], "
        "curve_iteration INT64[], curve_value DOUBLE[]"
    ),
    "Neuron": (
        "id INT64 PRIMARY KEY, run STRING, level INT64, `group` INT64, `index` INT64, channel INT64, y INT64, x INT64, "
        "bias DOUBLE, bn_weight DOUBLE, bn_bias DOUBLE, bn_mean DOUBLE, bn_var DOUBLE"
    ),
    "Counter": "name STRING PRIMARY KEY, value INT64",
}
REL_TABLES = {
    "HAS_CHECKPOINT": "FROM Run TO Checkpoint",
    "SYNAPSE": "FROM Neuron TO Neuron, w FLOAT, layer INT16, ky INT16, kx INT16, packed INT64",
    "CONNECTION": "FROM Neuron TO Neuron, kind STRING",
}
"""``layer`` (forward index of the weight layer) and the kernel offset ``ky``, ``kx`` are INT16: 2 bytes a
synapse each, and room for Conv1d kernels longer than INT8's 127; ``ky``/``kx`` are null on Linear synapses.
``packed`` holds all of a synapse for bulk reads (ladybug_packing.py), a storage detail of this backend."""
TABLES = (*NODE_TABLES, *REL_TABLES)
CREATE_STATEMENTS = {name: f"CREATE NODE TABLE IF NOT EXISTS {name}({columns})" for name, columns in NODE_TABLES.items()} | {
    name: f"CREATE REL TABLE IF NOT EXISTS {name}({columns})" for name, columns in REL_TABLES.items()
}
TABLE_INFO = {name: f"CALL table_info('{name}') RETURN name, type" for name in TABLES}
"""Statements on the archive's own tables (fixed names, never user text; table_info takes no parameter)."""
COUNTED_RELATIONSHIPS = {"SYNAPSE": ("layer_synapses", "edges"), "CONNECTION": (None, "connections")}
"""Each relationship table between neurons, with the Checkpoint properties that record its rows: per
weight layer (None: not per layer), and in total. Reads and ``check`` verify the rows against them."""
OLD_GROUP_COLUMN = "layer"
"""What ``Neuron.group`` was called before issue 14."""

LADYBUG_TYPES = {"int64": "INT64", "int32": "INT64", "double": "DOUBLE", "float": "DOUBLE", "bool": "BOOL", "string": "STRING"}
ARROW_TYPES = {"INT64": pa.int64(), "INT16": pa.int16(), "DOUBLE": pa.float64(), "FLOAT": pa.float32(), "BOOL": pa.bool_(),
               "STRING": pa.string()}


def declared_columns(table: str) -> dict[str, str]:
    """The columns the schema declares for ``table`` (name -> LadybugDB type), primary key included."""
    spec = {**NODE_TABLES, **REL_TABLES}[table]
    columns = {}
    for part in spec.split(","):
        words = part.split()
        if words and words[0] not in ("FROM", "TO"):
            columns[words[0].strip("`")] = words[1]
    return columns


class Type(str):
    """A column type or default literal to put into DDL (as opposed to a name, which gets backticks)."""


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPE = re.compile(r"(?i)(INT64|INT16|DOUBLE|FLOAT|BOOL|STRING)(\[\])?|true|false|-?\d+(\.\d+)?")


def statement(template: str, **parts) -> str:
    """Fill names into a statement template, checking them where they are formatted in.

    A part is a name (backticked), a list of names (comma-separated), a mapping of names to names (a
    property map ``{`key`: `name`, ...}``) or a :class:`Type`; anything else is refused. Values never
    come here: they are parameters.
    """
    def render(part) -> str:
        if isinstance(part, dict):
            return "{" + ", ".join(f"{render(key)}: {render(name)}" for key, name in part.items()) + "}"
        if isinstance(part, (list, tuple)):
            return ", ".join(render(each) for each in part)
        pattern = _TYPE if isinstance(part, Type) else _IDENTIFIER
        if not pattern.fullmatch(str(part)):
            raise StoreError(f"{part!r} cannot be put into a statement")
        return str(part) if isinstance(part, Type) else f"`{part}`"

    return template.format(**{key: render(part) for key, part in parts.items()})


def upgrade(store) -> None:
    """Bring an archive (a read-write LadybugStore) up to this schema: see the module docstring."""
    tables = {name for (name,) in store._rows("CALL show_tables() RETURN name")}
    steps = [[CREATE_STATEMENTS[name] for name in TABLES if name not in tables]]
    neuron = store._columns("Neuron") if "Neuron" in tables else {}
    if OLD_GROUP_COLUMN in neuron and "group" not in neuron:
        steps.append([statement("ALTER TABLE Neuron RENAME {old} TO {new}", old=OLD_GROUP_COLUMN, new="group")])
    for step in steps:
        if step:
            with store._transaction():
                for each in step:
                    store._run(each)
    if "SYNAPSE" in tables and "layer" not in store._columns("SYNAPSE"):
        missing = {name: kind for name, kind in declared_columns("SYNAPSE").items() if name not in store._columns("SYNAPSE")}
        store._remove_leftovers(lambda _: None, tables_only=True)
        store._rebuild(store._synapse_rows(layer_from_source=True), extra=missing)
    added = []
    for table in tables.intersection(TABLES):
        existing = store._columns(table)
        added += [statement("ALTER TABLE {table} ADD {name} {kind}", table=table, name=name, kind=Type(kind))
                  for name, kind in declared_columns(table).items() if name not in existing]
    if added:
        with store._transaction():
            for each in added:
                store._run(each)
