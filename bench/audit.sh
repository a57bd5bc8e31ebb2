#!/usr/bin/env bash
# socle audit verify on a log of 1 million events (hand-made promotion
# events, a signed checkpoint every 100,000), in SQLite and, when
# SOCLE_TEST_POSTGRES names a server, in PostgreSQL: the time and peak
# memory of the whole check (chain, signatures, checkpointed heads).
#
#   bench/audit.sh [EVENTS]    # writes bench/out/audit-report.md
source "$(dirname "$0")/lib.sh"
apt_install time
events=${1:-1000000}
build_socle
(cd "$root" && go build -o "$bin/bench-audit" ./bench/cmd/audit)
work="$out/audit"
rm -rf "$work"
mkdir -p "$work"
: > "$work/results"

# run LABEL DATABASE: fill, then verify twice (the second with a warm
# page cache) and keep the second.
run() {
  local label=$1 db=$2 dir="$work/$1"
  mkdir -p "$dir"
  "$bin/bench-audit" -database "$db" -events "$events" -checkpoints "$dir/checkpoints" -key "$dir/checkpoint.pub"
  for _ in 1 2; do
    /usr/bin/time -f "%e %M" -o "$dir/time" "$bin/socle" --database "$db" --data-dir "$dir" \
      audit verify --checkpoints "$dir/checkpoints" --key "$dir/checkpoint.pub" | tee "$dir/verify"
  done
  echo "$label $(cat "$dir/time")" >> "$work/results"
}

run sqlite "$work/sqlite/socle.db"
if [ -n "${SOCLE_TEST_POSTGRES:-}" ]; then
  pgdb="socle_bench_audit"
  psql "$SOCLE_TEST_POSTGRES" -qc "DROP DATABASE IF EXISTS $pgdb" -c "CREATE DATABASE $pgdb"
  run postgresql "$(echo "$SOCLE_TEST_POSTGRES" | sed "s#/postgres?#/$pgdb?#")"
  psql "$SOCLE_TEST_POSTGRES" -qc "DROP DATABASE $pgdb"
fi

{
  echo "# socle audit verify, $events events"
  echo
  echo "| store | seconds | peak RSS (MiB) | events/s |"
  echo "|---|---|---|---|"
  while read -r label secs kb; do
    awk -v l="$label" -v s="$secs" -v k="$kb" -v n="$events" \
      'BEGIN { printf "| %s | %.2f | %.0f | %.0f |\n", l, s, k/1024, n/s }'
  done < "$work/results"
  echo
  echo "Target: under 10 s for 1 million events."
} | tee "$out/audit-report.md"
