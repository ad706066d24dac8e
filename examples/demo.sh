#!/usr/bin/env bash
# The main job on the embedded archive: two real IMP runs on the digits images (an MLP written as OpenLTH
# writes a run, and a residual CNN archived from its training loop), archived, queried, and drawn.
#   bash examples/demo.sh [OUT]      (default OUT=out; the archive is OUT/archive; two to three minutes)
set -euo pipefail
out="${1:-out}"
here="$(dirname "$0")"
export NETARCHIVE_STORE="$out/archive"
# The training loop archives each level itself (netarchive.integrations.Recorder); without --archive the
# script writes OpenLTH's files instead, for `netarchive ingest "$out/digits" --run digits --input-shape 1,8,8`.
python "$here/digits_imp.py" "$out/digits" --levels 15 --archive "$out/archive" --run digits
netarchive ls
netarchive query cypher \
  'MATCH (c:Checkpoint {run: $run}) MATCH (:Neuron {run: $run, level: c.level, `group`: 0})-[s:SYNAPSE]->()
   RETURN c.level AS level, c.sparsity AS sparsity, c.accuracy AS accuracy, count(s) AS first_layer_synapses
   ORDER BY level' --param run=digits
netarchive query summary --run digits -o "$out/summary.csv"
netarchive query threshold --run digits --level 15
netarchive query locality --run digits --layer 0 --summary --format csv
netarchive eval --run digits --level 15 --data "$out/digits/test.npz"
# the second run: a CNN with batch norm and one residual block, archived level by level with ingest_model
python "$here/digits_cnn.py" --levels 15 --replace
netarchive ls --run digits-cnn
netarchive eval --run digits-cnn --level 10 --data "$out/digits/test.npz"
netarchive query tccr --run digits-cnn --level 10 --convention seed
netarchive query persistence --run digits-cnn --level 10
netarchive plot percolation --run digits-cnn --level 10 -o "$out/percolation_cnn_level10.png"
netarchive plot persistence --run digits-cnn -o "$out/persistence_cnn.png"
netarchive report --run digits --data "$out/digits/test.npz" -o "$out/report"   # figures and tables, one page
echo "open $out/report/index.html for the figures; the summary table is $out/summary.csv"
