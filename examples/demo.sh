#!/usr/bin/env bash
# The main job on the embedded archive: a real IMP run on the digits images, archived and queried.
#   bash examples/demo.sh [OUT]      (default OUT=out; the archive is OUT/archive)
set -euo pipefail
out="${1:-out}"
python "$(dirname "$0")/digits_imp.py" "$out/digits" --levels 10
export NETARCHIVE_STORE="$out/archive"
netarchive ingest "$out/digits" --run digits --input-shape 1,8,8 --meta dataset=digits --replace
netarchive ls
netarchive query cypher \
  'MATCH (c:Checkpoint {run: $run}) MATCH (:Neuron {run: $run, level: c.level, layer: 0})-[s:SYNAPSE]->()
   RETURN c.level AS level, c.sparsity AS sparsity, c.accuracy AS accuracy, count(s) AS first_layer_synapses
   ORDER BY level' --param run=digits
