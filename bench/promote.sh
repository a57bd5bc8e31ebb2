#!/usr/bin/env bash
# Promote 1,000 images dev → qa → prod in socle's embedded registry (prod
# in a repository of its own), and do the same tag moves and copies with
# crane, in one run. Reports time, images/s, manifest and blob requests,
# and the blob bytes moved (none: promotion is manifest operations and
# blob mounts).
#
#   bench/promote.sh             # writes bench/out/promote-report.md
#   IMAGES=200 bench/promote.sh
source "$(dirname "$0")/lib.sh"
go_tool crane github.com/google/go-containerregistry/cmd/crane@v0.22.1
(cd "$root" && go build -o "$bin/promote-bench" ./bench/cmd/promote)
"$bin/promote-bench" -work "$out" -images "${IMAGES:-1000}" -crane "$bin/crane" | tee "$out/promote-report.md"
