#!/usr/bin/env bash
# The main job on the embedded archive: a real IMP run on the digits images, archived, queried, and drawn.
#   bash examples/demo.sh [OUT]      (default OUT=out; the archive is OUT/archive; about a minute)
set -euo pipefail
out="${1:-out}"
here="$(dirname "$0")"
export NETARCHIVE_STORE="$out/archive"
# The training loop archives each level itself (netarchive.integrations.Recorder); without --archive the
# script writes OpenLTH's files instead, for `netarchive ingest "$out/digits" --run digits --input-shape 1,8,8`.
python "$here/digits_imp.py" "$out/digits" --levels 15 --archive "$out/archive" --run digits
netarchive ls
netarchive query cypher \
  'MATCH (c:Checkpoint {run: $run}) MATCH (:Neuron {run: $run, level: c.level, layer: 0})-[s:SYNAPSE]->()
   RETURN c.level AS level, c.sparsity AS sparsity, c.accuracy AS accuracy, count(s) AS first_layer_synapses
   ORDER BY level' --param run=digits
netarchive query summary --run digits -o "$out/summary.csv"
netarchive query threshold --run digits --level 15
netarchive query locality --run digits --layer 0 --summary --format csv
netarchive eval --run digits --level 15 --data "$out/digits/test.npz"
netarchive report --run digits --data "$out/digits/test.npz" -o "$out/report"   # figures and tables, one page
echo "open $out/report/index.html for the figures; the summary table is $out/summary.csv"
