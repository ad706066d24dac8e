#!/usr/bin/env bash
# Locality of the digits IMP run (the foundation demo, examples/digits_imp.py), level by level.
#   bash docs/locality_demo.sh [OUT]     (about 4 min on a laptop core; the archive is OUT/archive)
set -euo pipefail
out="${1:-out}"
python "$(dirname "$0")/../examples/digits_imp.py" "$out/digits" --levels 15
export NETARCHIVE_STORE="$out/archive"
netarchive ingest "$out/digits" --run digits --input-shape 1,8,8 --replace --format csv > /dev/null
netarchive query locality --run digits --layer 1 --summary
netarchive query displacements --run digits --level 15 --layer 1 --nonzero -o "$out/displacements.csv"
netarchive plot locality --run digits -o "$out/locality_digits.png"
