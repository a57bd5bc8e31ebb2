#!/usr/bin/env bash
# A Dockerfile cascade after a base change, built by socle and by the
# "Jenkins chain" a team writes by hand: buildah, level by level, one
# image after the other. The catalog (hand-made Dockerfiles, each with a
# RUN step) has two siblings per level:
#
#   debian (assembled) ─ base ─┬─ java ─┬─ shop      ─ (tools: on debian,
#                              │        └─ billing      not below base)
#                              └─ node ─┬─ web
#                                       └─ admin
#
# Both push to socle serve's embedded registry and keep buildah's layer
# cache warm; each is timed on a fresh base change. socle rebuilds the
# seven images below the base, siblings at once (--jobs), and skips the
# tools image the change does not reach; the chain rebuilds what its
# Jenkins jobs list, in order.
#
#   bench/build.sh [RUNS]    # writes bench/out/build-report.md
source "$(dirname "$0")/lib.sh"
apt_install buildah time python3
runs=${1:-3}
build_socle
work="$out/build"
rm -rf "$work" && mkdir -p "$work"
data="$work/data"
api=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/socle.yaml" <<YAML
server: {addr: 127.0.0.1:$api, registry_addr: 127.0.0.1:$reg}
images:
  - {name: debian, repository: socle/debian, version: "12.8",
     build: {assemble: {suite: bookworm, packages: [base-files, dash, coreutils], epoch: 1700000000, config: {user: root}}}}
  - {name: tools, repository: socle/tools, parent: debian, version: "1.0", build: {dockerfile: {context: tools}}}
  - {name: base, repository: socle/base, parent: debian, version: "1.0", build: {dockerfile: {context: base}}}
  - {name: java, repository: socle/java, parent: base, version: "17", build: {dockerfile: {context: java}}}
  - {name: node, repository: socle/node, parent: base, version: "20", build: {dockerfile: {context: node}}}
  - {name: shop, repository: apps/shop, parent: java, version: "1.0", build: {dockerfile: {context: shop}}}
  - {name: billing, repository: apps/billing, parent: java, version: "1.0", build: {dockerfile: {context: billing}}}
  - {name: web, repository: apps/web, parent: node, version: "1.0", build: {dockerfile: {context: web}}}
  - {name: admin, repository: apps/admin, parent: node, version: "1.0", build: {dockerfile: {context: admin}}}
YAML
for d in tools base java node shop billing web admin; do
  mkdir -p "$work/$d"
  # Each step does a little real work, as a build would.
  printf 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN mkdir -p /opt/%s && seq 1 200000 | sha256sum > /opt/%s/sum && cat /opt/*/sum | sha256sum > /opt/%s/chain\n' "$d" "$d" "$d" > "$work/$d/Dockerfile"
done
"$bin/socle" --data-dir "$data" serve --config "$work/socle.yaml" > "$work/serve.log" 2>&1 &
serve=$!
trap 'kill $serve 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$api/readyz" >/dev/null && break; sleep 0.2; done
socle() { "$bin/socle" --data-dir "$data" "$@"; }
socle build --config "$work/socle.yaml" >/dev/null 2>&1

# The hand-written chain: buildah in each Jenkins job, in order, each job
# pushing its image and handing its digest to the next ones.
chain_root="$work/chain-buildah"
chain() {
  local -A digest
  digest[debian]="127.0.0.1:$reg/socle/debian@$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' -I "http://127.0.0.1:$reg/v2/socle/debian/manifests/12" | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}' | tr -d '\r')"
  for step in "base debian socle/base" "java base socle/java" "node base socle/node" "shop java apps/shop" "billing java apps/billing" "web node apps/web" "admin node apps/admin"; do
    set -- $step
    buildah --storage-driver vfs --root "$chain_root/storage" --runroot "$chain_root/run" bud --quiet --isolation chroot --layers \
      --tls-verify=false --build-arg "BASE_IMAGE=${digest[$2]}" -t "127.0.0.1:$reg/$3:chain" "$work/$1" >/dev/null
    buildah --storage-driver vfs --root "$chain_root/storage" --runroot "$chain_root/run" push --quiet --tls-verify=false \
      --digestfile "$work/digest" "127.0.0.1:$reg/$3:chain"
    digest[$1]="127.0.0.1:$reg/$3@$(cat "$work/digest")"
  done
}
chain # warm its layer cache

: > "$work/times"
for run in $(seq "$runs"); do
  printf 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN mkdir -p /opt/base && echo run-%s-socle > /opt/base/version\n' "$run" > "$work/base/Dockerfile"
  /usr/bin/time -f "socle %e" -a -o "$work/times" "$bin/socle" --data-dir "$data" build --jobs "${JOBS:-4}" --config "$work/socle.yaml" > "$work/socle-$run.txt" 2>/dev/null
  printf 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN mkdir -p /opt/base && echo run-%s-chain > /opt/base/version\n' "$run" > "$work/base/Dockerfile"
  /usr/bin/time -f "chain %e" -a -o "$work/times" bash -c "$(declare -f chain); work=$work reg=$reg chain_root=$chain_root; chain"
done
# A nightly run with nothing changed: socle's planner skips every image;
# the chain rebuilds them all.
for run in $(seq "$runs"); do
  /usr/bin/time -f "socle-nightly %e" -a -o "$work/times" "$bin/socle" --data-dir "$data" build --jobs 4 --config "$work/socle.yaml" > "$work/socle-nightly.txt" 2>/dev/null
  /usr/bin/time -f "chain-nightly %e" -a -o "$work/times" bash -c "$(declare -f chain); work=$work reg=$reg chain_root=$chain_root; chain"
done
built=$(grep -c succeeded "$work/socle-1.txt" || true)
python3 - "$work/times" "$runs" "$built" "${JOBS:-4}" <<'PY' | tee "$out/build-report.md"
import statistics, sys
t = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    t.setdefault(k, []).append(float(v))
s, c = statistics.median(t["socle"]), statistics.median(t["chain"])
print(f"# Dockerfile cascade after a base change ({sys.argv[2]} runs, medians)\n")
print("| builder | wall time (s) | images rebuilt |")
print("|---|---|---|")
print(f"| socle build --jobs {sys.argv[4]} (buildah, siblings in parallel, planner) | {s:.1f} | {sys.argv[3]} |")
print(f"| hand-written chain (buildah, one job after the other) | {c:.1f} | 7 |")
print(f"\nsocle takes {s/c:.2f}x the chain's time.\n")
sn, cn = statistics.median(t["socle-nightly"]), statistics.median(t["chain-nightly"])
print("Nightly run, nothing changed:\n")
print("| builder | wall time (s) | images rebuilt |")
print("|---|---|---|")
print(f"| socle build (plans nothing to do) | {sn:.1f} | 0 |")
print(f"| hand-written chain | {cn:.1f} | 7 |")
print(f"\nsocle takes {sn/cn:.2f}x the chain's time.")
PY
