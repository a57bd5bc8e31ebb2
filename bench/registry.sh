#!/usr/bin/env bash
# Push and pull the same 200 images (real layers from the shared data),
# 50 at once, to socle's embedded registry and to the CNCF distribution
# registry, in one run: throughput and peak memory of each server. socle
# is measured twice: its registry alone, and socle serve, which also
# scans every push. Then crane and cosign run against socle's registry.
#
#   bench/registry.sh [IMAGES] [PARALLEL]    # writes bench/out/registry-report.md
source "$(dirname "$0")/lib.sh"
apt_install time
images=${1:-200}
parallel=${2:-50}
build_socle
(cd "$root" && go build -o "$bin/bench-registry" ./bench/cmd/registry)
go_tool registry github.com/distribution/distribution/v3/cmd/registry@v3.0.0
go_tool crane github.com/google/go-containerregistry/cmd/crane@v0.22.1
go_tool cosign github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5
work="$out/registry"
rm -rf "$work"
mkdir -p "$work"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
peak_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# bench NAME PORT PID: push and pull, then the server's peak RSS.
bench() {
  local result
  result=$("$bin/bench-registry" -target "127.0.0.1:$2" -data "$data" -images "$images" -parallel "$parallel")
  echo "$1 $result $(peak_kb "$3")" >> "$work/results"
}

: > "$work/results"

# distribution, filesystem storage, no auth.
port=$(free_port)
cat > "$work/distribution.yml" <<EOF
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $work/distribution}
  delete: {enabled: true}
http: {addr: 127.0.0.1:$port}
EOF
"$bin/registry" serve "$work/distribution.yml" > "$work/distribution.log" 2>&1 &
pid=$!
wait_port "$port"
bench distribution "$port" "$pid"
kill "$pid"; wait "$pid" 2>/dev/null || true

# socle's embedded registry alone.
port=$(free_port)
"$bin/bench-registry" -serve "127.0.0.1:$port" -dir "$work/socle-registry" > "$work/socle-registry.log" 2>&1 &
pid=$!
wait_port "$port"
bench socle-registry "$port" "$pid"
kill "$pid"; wait "$pid" 2>/dev/null || true

# socle serve: the registry, and a scan of every push.
port=$(free_port)
"$bin/socle" serve --data-dir "$work/socle-serve" --addr 127.0.0.1:0 --registry-addr "127.0.0.1:$port" > "$work/socle-serve.log" 2>&1 &
pid=$!
wait_port "$port"
bench socle-serve "$port" "$pid"

# crane and cosign against socle serve's registry.
reg="127.0.0.1:$port"
tools="$work/tools.txt"
: > "$tools"
{
  echo "crane catalog: $("$bin/crane" catalog --insecure "$reg" | tr '\n' ' ')"
  echo "crane ls bench/app: $("$bin/crane" ls --insecure "$reg/bench/app" | wc -l) tags"
  "$bin/crane" copy --insecure "$reg/bench/app:0.0.0" "$reg/bench/copy:1" >/dev/null 2>&1 && echo "crane copy: ok"
  echo "crane digest: $("$bin/crane" digest --insecure "$reg/bench/copy:1")"
  export COSIGN_PASSWORD=bench COSIGN_YES=true
  (cd "$work" && "$bin/cosign" generate-key-pair >/dev/null 2>&1)
  digest=$("$bin/crane" digest --insecure "$reg/bench/app:1.0.0")
  "$bin/cosign" sign --key "$work/cosign.key" --tlog-upload=false --allow-http-registry "$reg/bench/app@$digest" >/dev/null 2>&1 && echo "cosign sign: ok"
  "$bin/cosign" verify --key "$work/cosign.pub" --insecure-ignore-tlog --allow-http-registry "$reg/bench/app@$digest" >/dev/null 2>&1 && echo "cosign verify: ok"
} >> "$tools" 2>&1 || true
kill "$pid"; wait "$pid" 2>/dev/null || true

report="$out/registry-report.md"
python3 - "$work/results" "$images" "$parallel" > "$report" <<'PY'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    name, rest = line.split(" ", 1)
    js, peak = rest.rsplit(" ", 1)
    r = json.loads(js)
    r["peak_mib"] = int(peak) / 1024
    rows[name] = r
print(f"# Registry: push and pull {sys.argv[2]} images, {sys.argv[3]} at once\n")
print("| server | push | push MiB/s | pull | pull MiB/s | errors | peak RSS |")
print("|---|---|---|---|---|---|---|")
for name, r in rows.items():
    print(f"| {name} | {r['push_seconds']:.2f} s ({r['images']/r['push_seconds']:.0f} images/s) | {r['push_mb']/r['push_seconds']:.1f} "
          f"| {r['pull_seconds']:.2f} s ({r['images']/r['pull_seconds']:.0f} images/s) | {r['pull_mb']/r['pull_seconds']:.1f} "
          f"| {r['push_errors']}+{r['pull_errors']} | {r['peak_mib']:.0f} MiB |")
d = rows.get("distribution")
if d:
    print()
    for name in ("socle-registry", "socle-serve"):
        r = rows.get(name)
        if r:
            print(f"- {name}: push throughput {d['push_seconds']/r['push_seconds']:.2f}× distribution's, "
                  f"pull {d['pull_seconds']/r['pull_seconds']:.2f}×, peak memory {r['peak_mib']/d['peak_mib']:.2f}× distribution's.")
PY
{ echo; echo "## crane and cosign against socle serve's registry"; echo; sed 's/^/- /' "$work/tools.txt"; } >> "$report"
cat "$report"
