#!/usr/bin/env bash
# Re-evaluation at fleet scale: fill a store with 10,000 images of 200
# packages sharing 20 bases (bench/cmd/fleet), then withdraw 1,000 real
# PyPA advisories as a feed sync would deliver them (10, then 100, then
# 1,000 others), and time socle's incremental re-evaluation of each against
# a full re-match of the same change on a copy of the store. Reports the
# images touched.
#
#   bench/reeval.sh                 # writes bench/out/reeval-report.md
#   IMAGES=2000 CHANGED=10,100 bench/reeval.sh
#   REUSE=1 SKIP=1110 bench/reeval.sh   # the store of an earlier run, other advisories
#
# A syft+grype rescan is not run here: grype needs its vulnerability
# database from the network, and a rescan reads every image's layers,
# which bench/scan.sh measures per image.
source "$(dirname "$0")/lib.sh"
(cd "$root" && go build -o "$bin/fleet" ./bench/cmd/fleet)
reuse=(); [ -n "${REUSE:-}" ] && reuse=(-reuse)
"$bin/fleet" -data "$data" -work "$out" -images "${IMAGES:-10000}" -packages 200 -bases 20 "${reuse[@]}" \
  -reeval "${CHANGED:-10,100,1000}" -reeval-skip "${SKIP:-0}" | tee "$out/reeval-report.md"
