"""``SYNAPSE.packed`` (netarchive/store/ladybug_packing.py): the position is torch's flat index of the weight in
the dense weights of its layers (after the earlier layers), the low bits the weight; packing and unpacking
every test network gives its synapses back exactly; reads of packed, unpacked (too big) and partly packed
checkpoints give the same network, as does one with a stray unpacked synapse added (refused as damaged); ``check`` finds a packed value that disagrees and ``--repair`` clears it."""
from __future__ import annotations

import numpy as np
import pytest

import netarchive
from netarchive.errors import DamagedArchive
from netarchive.loaders.traced import from_module
from netarchive.model.columns import synapse_columns
from netarchive.store import ladybug_packing
from netarchive.store.ladybug_packing import Packing
from tests import models
from tests.test_store_networks import SHAPES, assert_same_network, pruned, traced


def packing(net) -> Packing:
    return Packing(net.widths, net.architecture(), len(net.layers))


def test_the_position_is_torchs_flat_index_after_the_earlier_layers():
    model = models.cnn()
    net = from_module(model, run="dense", level=0, input_shape=SHAPES["cnn"])
    columns = synapse_columns(net)
    packed = packing(net).pack(columns)
    position = packed >> 32
    weights = [m.weight.detach().numpy().ravel() for m in model.modules() if hasattr(m, "weight") and m.weight.dim() > 1]
    starts = np.cumsum([0] + [len(w) for w in weights])
    assert len(weights) == len(net.layers) and net.edges == starts[-1]  # dense: every weight is a synapse
    for l, w in enumerate(weights):
        mine = columns["layer"] == l
        assert sorted(position[mine].tolist()) == list(range(starts[l], starts[l + 1]))
        assert np.array_equal(w[position[mine] - starts[l]], columns["w"][mine])
    assert np.array_equal((packed & 0xFFFFFFFF).astype(np.uint32).view(np.float32), columns["w"])


@pytest.mark.parametrize("name", SHAPES)
def test_unpacking_gives_every_synapse_back(name):
    net = traced(pruned(name), name, name)
    columns = synapse_columns(net)
    back = packing(net).unpack(packing(net).pack(columns), name, 0)
    for key, values in columns.items():
        assert back[key].tolist() == np.asarray(values).tolist(), key


@pytest.mark.parametrize("arrangement", ["layers in reverse", "shuffled"])
def test_unpacking_puts_the_layers_in_order_and_keeps_the_order_within_each(arrangement):
    """Runs of one layer out of order (placed), and rows of all layers interleaved (sorted first)."""
    net = traced(pruned("basic_block"), "basic_block", "b")
    columns = synapse_columns(net)
    layer = np.asarray(columns["layer"])
    order = (np.argsort(-layer, kind="stable") if arrangement == "layers in reverse"
             else np.random.default_rng(0).permutation(len(layer)))
    back = packing(net).unpack(packing(net).pack(columns)[order], "b", 0)
    expected = order[np.argsort(layer[order], kind="stable")]
    for key, values in columns.items():
        assert back[key].tolist() == np.asarray(values)[expected].tolist(), key


@pytest.mark.parametrize("name", ["cnn", "basic_block", "residual_mlp"])
def test_packed_unpacked_and_partly_packed_checkpoints_read_the_same(tmp_path, monkeypatch, name):
    net = traced(pruned(name), name, "packed")
    with netarchive.open(tmp_path / "archive") as archive:
        archive.write(net)
        monkeypatch.setattr(ladybug_packing, "MAX_POSITIONS", 10)  # too big to pack: null column
        archive.write(traced(pruned(name), name, "unpacked"))
        monkeypatch.undo()
        store = archive.store
        assert store._rows("MATCH (a:Neuron {run: 'unpacked'})-[s:SYNAPSE]->() RETURN count(s.packed)")[0][0] == 0
        archive.write(traced(pruned(name), name, "partly"))
        with store._transaction():
            store._run("MATCH (a:Neuron {run: 'partly', `group`: 0})-[s:SYNAPSE]->() SET s.packed = NULL")
        for run in ("packed", "unpacked", "partly"):
            assert_same_network(archive.checkpoint(run, 0), net)
        assert archive.check().empty, archive.check().to_dict("records")
        assert set(archive.cypher("MATCH ()-[s:SYNAPSE]->() RETURN s LIMIT 1").s[0]) == {"_type", "w", "layer", "ky", "kx"} - (
            set() if net.layers[0].conv else {"ky", "kx"})


def damaged_cnn(tmp_path, statement: str):
    """A CNN's archive after ``statement`` ran on it, and the network."""
    net = traced(pruned("cnn"), "cnn", "cnn")
    archive = netarchive.open(tmp_path / "archive")
    archive.write(net)
    with archive.store._transaction():
        archive.store._run(statement)
    return archive, net


def test_check_finds_a_packed_value_that_disagrees_and_repair_clears_it(tmp_path):
    archive, net = damaged_cnn(tmp_path, "MATCH ()-[s:SYNAPSE {layer: 1}]->() WITH s LIMIT 1 SET s.packed = s.packed + 1")
    with archive:
        found = archive.check()
        assert found.problem.tolist() == ["packed-synapses"] and found.detail[0].startswith("the packed column of 1 synapse(s)")
        assert archive.check(repair=True).repaired.all()
        assert archive.check().empty
        assert_same_network(archive.checkpoint("cnn", 0), net)


def test_a_stray_synapse_without_a_packed_value_is_refused_as_damage(tmp_path):
    archive, _ = damaged_cnn(tmp_path, "MATCH (a:Neuron {`group`: 0, `index`: 0}), (b:Neuron {`group`: 1, `index`: 0}) "
                                       "CREATE (a)-[:SYNAPSE {w: 1.0, layer: 0, ky: 2, kx: 2}]->(b)")
    with archive:
        with pytest.raises(DamagedArchive, match="edges where it records"):
            archive.checkpoint("cnn", 0)
