#!/usr/bin/env bash
# socle serve at fleet scale: fill a store with 10,000 images of 200
# packages each (built from real package and advisory data, see
# bench/cmd/fleet), then measure the "affected by CVE" query, the ingest
# rate and the API p99 under a loopback load with wrk.
#
#   bench/serve.sh                      # SQLite in bench/out
#   bench/serve.sh postgres://...       # PostgreSQL
source "$(dirname "$0")/lib.sh"
apt_install wrk
(cd "$root" && go build -o "$bin/fleet" ./bench/cmd/fleet)
db=${1:-}
"$bin/fleet" -data "$data" -work "$out" -db "$db" -images "${IMAGES:-10000}" -packages 200 -bases 20 -load "${LOAD:-10s}" | tee "$out/serve-report.md"
