#!/usr/bin/env bash
# Re-evaluation at fleet scale: fill a store with 10,000 images of 200
# packages sharing 20 bases (bench/cmd/fleet), then withdraw 1,000 real
# PyPA advisories as a feed sync would deliver them, and time socle's
# incremental re-evaluation against a full re-match of the same change on
# a copy of the store. Reports the images touched.
#
#   bench/reeval.sh                 # writes bench/out/reeval-report.md
#   IMAGES=2000 CHANGED=500 bench/reeval.sh
#
# A syft+grype rescan is not run here: grype needs its vulnerability
# database from the network, and a rescan reads every image's layers,
# which bench/scan.sh measures per image.
source "$(dirname "$0")/lib.sh"
(cd "$root" && go build -o "$bin/fleet" ./bench/cmd/fleet)
"$bin/fleet" -data "$data" -work "$out" -images "${IMAGES:-10000}" -packages 200 -bases 20 -reeval "${CHANGED:-1000}" | tee "$out/reeval-report.md"
