#!/usr/bin/env bash
# Fleet scale (issue 17): fill a store with N images of 200 packages
# sharing 20 bases (real Debian and PyPI package data, real advisories:
# bench/cmd/fleet), then report ingest with the layers already analysed,
# re-evaluation after 10, 100 and 1,000 changed advisories, socle serve's
# "affected by CVE" and image findings answers (latency distributions,
# answer cache cold then warm), the store's size, socle serve's cold
# start and peak memory. The same run on the previous commit follows, and
# the ratios of the two.
#
#   bench/fleet.sh                                   # 10,000 images, SQLite in bench/out
#   bench/fleet.sh --images 100000
#   bench/fleet.sh --images 100000 --database postgres://... --replicas 2
#   bench/fleet.sh --previous none                    # skip the previous commit
#   bench/fleet.sh --previous-run out/fleet-sqlite-10000-r1-previous   # reuse its earlier run (.json, .md)
#   bench/fleet.sh --twice                            # new, previous, previous, new: both orders' ratios
#
# --twice is for a machine whose speed drifts: the run that comes second
# can be faster or slower for reasons of its own, so each build runs once
# first and once second, and the report gives the ratios of both pairs.
# The PostgreSQL database is emptied first: give it one made for this.
# --replicas runs that many ingesting processes and that many socle
# serve on the same database.
source "$(dirname "$0")/lib.sh"
images=10000 database="" replicas=1 workers=64 queries=1000 previous_run="" twice=""
# The last commit before the fleet-scale work.
previous=5b0c4d8
while [ $# -gt 0 ]; do
  case "$1" in
    --images) images=$2; shift 2 ;;
    --database) database=$2; shift 2 ;;
    --replicas) replicas=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --queries) queries=$2; shift 2 ;;
    --previous) previous=$2; shift 2 ;;
    --previous-run) previous_run=$2; shift 2 ;;
    --twice) twice=1; shift ;;
    *) echo "usage: $0 [--images N] [--database URL] [--replicas R] [--workers W] [--queries Q] [--previous REF|none] [--previous-run PATH] [--twice]" >&2; exit 2 ;;
  esac
done
backend=sqlite; [ -n "$database" ] && backend=postgres
name="fleet-$backend-$images-r$replicas"
report="$out/$name.md"

# run DIR LABEL: builds socle and the fleet benchmark from the tree in DIR
# and runs the report into $out/$name-LABEL.{md,json}.
run() {
  local dir=$1 label=$2 work="$out/$name-$2"
  rm -rf "$work" && mkdir -p "$work"
  (cd "$dir" && go build -o "$work/socle" ./cmd/socle && go build -o "$work/fleet" ./bench/cmd/fleet)
  "$work/fleet" -scale -data "$data" -work "$work" -db "$database" -images "$images" -replicas "$replicas" \
    -workers "$workers" -queries "$queries" -socle "$work/socle" -json "$out/$name-$label.json" \
    -commit "$(cd "$dir" && git rev-parse --short HEAD 2>/dev/null || echo "$label")" \
    >"$out/$name-$label.md" 2>"$out/$name-$label.log"
  rm -rf "$work"
}

run "$root" new
cat "$out/$name-new.md" >"$report"
if [ -n "$previous_run" ]; then
  previous_run=$(realpath -m "$previous_run")
  if [ "$previous_run" != "$out/$name-previous" ]; then
    cp "$previous_run.json" "$out/$name-previous.json" && cp "$previous_run.md" "$out/$name-previous.md"
  fi
  (cd "$root" && go build -o "$bin/fleet" ./bench/cmd/fleet)
  { echo; cat "$out/$name-previous.md"; echo
    "$bin/fleet" -compare "$out/$name-new.json,$out/$name-previous.json"; } >>"$report"
elif [ "$previous" != none ]; then
  tree=$(mktemp -d)
  trap 'git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || true' EXIT
  git -C "$root" worktree add --detach "$tree" "$previous" >/dev/null 2>&1
  # The previous commit runs this benchmark program, on its own store code.
  rm -rf "$tree/bench/cmd/fleet" && cp -r "$root/bench/cmd/fleet" "$tree/bench/cmd/fleet"
  run "$tree" previous
  (cd "$root" && go build -o "$bin/fleet" ./bench/cmd/fleet)
  { echo; cat "$out/$name-previous.md"; echo
    "$bin/fleet" -compare "$out/$name-new.json,$out/$name-previous.json"; } >>"$report"
  if [ -n "$twice" ]; then
    # The other order: the previous commit first, then the new one.
    run "$tree" previous2
    run "$root" new2
    { echo; echo "Again, the previous commit first:"; echo; cat "$out/$name-previous2.md"; echo; cat "$out/$name-new2.md"; echo
      "$bin/fleet" -compare "$out/$name-new2.json,$out/$name-previous2.json"; } >>"$report"
  fi
fi
cat "$report"
