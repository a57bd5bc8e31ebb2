#!/usr/bin/env bash
# The closed loop, timed: from a feed sync bringing an advisory to the
# last staging pod running the fixed digest, for a chain of 1 base,
# RUNTIMES runtimes and APPS apps (Dockerfiles built with buildah), on
# socle serve and a real control plane (kube-apiserver, etcd, kwok, built
# by .ci/k8s.sh). It runs TestClosedLoopOnARealControlPlane at that size
# and reports each step's time and the slowest step of the fix run.
# There is no peer tool that does the whole loop; the target is 5 minutes.
#
#   bench/loop.sh [RUNTIMES] [APPS]    # default 2 10; writes bench/out/loop-report.md
source "$(dirname "$0")/lib.sh"
runtimes=${1:-2}
apps=${2:-10}
if [ -z "${SOCLE_K8S:-}" ]; then
  SOCLE_K8S=$("$root/.ci/k8s.sh")
  export SOCLE_K8S
fi
log="$out/loop.log"
(cd "$root" && SOCLE_LOOP_RUNTIMES=$runtimes SOCLE_LOOP_APPS=$apps \
  go test -count=1 -run TestClosedLoopOnARealControlPlane -v -timeout 40m ./internal/server) > "$log" 2>&1 || {
  tail -50 "$log"
  echo "the loop test failed; see $log" >&2
  exit 1
}
{
  echo "# The closed loop, 1 base, $runtimes runtimes, $apps apps, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "socle $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo dev); $(nproc) cores; buildah $(buildah --version | awk '{print $3}')."
  echo
  echo "| step | seconds |"
  echo "|---|---|"
  grep -o 'LOOP-STEP .*' "$log" | sed -E 's/LOOP-STEP (.*) ([0-9.]+)s$/| \1 | \2 |/'
  echo
  grep -o 'LOOP-TOTAL .*' "$log" | sed 's/LOOP-TOTAL /**Loop: /; s/s from/ s** from/'
  echo
  grep -o 'LOOP-SLOWEST .*' "$log" | sed 's/LOOP-SLOWEST /Slowest step of the fix run: /'
} > "$out/loop-report.md"
cat "$out/loop-report.md"
