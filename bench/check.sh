#!/usr/bin/env bash
# socle check against kubeconform (schema validation) and conftest (the
# example Rego policies), on the same inputs, in one run: wall time, peak
# memory, resources per second.
#
#   bench/check.sh [RESOURCES]     # default 50,000; writes bench/out/check-report.md
#
# Inputs: the shared Kubernetes manifests (real files written by others)
# repeated until RESOURCES objects, in files of about 100 objects; the
# conftest kubernetes example policy over the same files.
source "$(dirname "$0")/lib.sh"
apt_install time python3
want=${1:-50000}
build_socle
go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0
go_tool conftest github.com/open-policy-agent/conftest@v0.71.1
work="$out/check"
rm -rf "$work"
mkdir -p "$work/in"
: > "$out/times"

# Concatenate the shared manifests (YAML only, valid streams) into files
# of ~100 documents until there are enough.
python3 - "$data/k8s-manifests" "$work/in" "$want" <<'PY'
import os, sys
src, dst, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
docs = []
for root, _, files in os.walk(src):
    for f in sorted(files):
        if f.endswith((".yaml", ".yml")):
            text = open(os.path.join(root, f), encoding="utf-8", errors="replace").read()
            for d in text.split("\n---"):
                if "kind:" in d and "apiVersion:" in d and "{{" not in d and "{%" not in d:
                    docs.append(d.strip("-\n") + "\n")
n, i, batch = 0, 0, []
while n < want:
    batch.append(docs[i % len(docs)]); i += 1; n += 1
    if len(batch) == 100 or n == want:
        open(os.path.join(dst, f"m{n:06d}.yaml"), "w").write("---\n".join(batch))
        batch = []
print(f"{n} resources from {len(docs)} distinct documents")
PY
files=$(ls "$work"/in/*.yaml | wc -l)
schemas="$data/kubeconform/schemas"
loc="$schemas/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json"

# Schema validation: kubeconform strict with the shared 1.30 schemas
# (nine kinds; others are skipped), socle strict with its 1.32 schema (all
# built-in kinds).
measure "schema kubeconform" "$bin/kubeconform" -strict -ignore-missing-schemas -summary -kubernetes-version 1.30.0 -schema-location "$loc" "$work/in" > "$work/kubeconform.txt" 2>&1 || true
measure "schema socle" "$bin/socle" check --rules schema --strict --kubernetes-version 1.32 -o json --file "$work/socle-schema.json" "$work/in" || true
# Rego: the conftest kubernetes example policies.
pol="$data/conftest/examples/kubernetes/policy"
measure "rego conftest" "$bin/conftest" test -p "$pol" -o json "$work"/in/*.yaml > "$work/conftest.json" 2>/dev/null || true
measure "rego socle" "$bin/socle" check -p "$pol" -o json --file "$work/socle-rego.json" "$work/in" || true
# Every built-in rule (schema, PSS, hardening) in one pass.
measure "all socle" "$bin/socle" check -o json --file "$work/socle-all.json" "$work/in" || true

python3 - "$out" "$want" "$files" <<'PY' > "$out/check-report.md"
import json, sys
out, want, files = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t = {}
for line in open(f"{out}/times"):
    p = line.split()
    if len(p) >= 4 and not line.startswith("Command"):
        t[(p[0], p[1])] = (float(p[2]), int(p[3]) / 1024)
print(f"# socle check vs kubeconform and conftest, {want} resources in {files} files")
print()
print("| task | tool | seconds | resources/s | peak MiB | ratio (peer time / socle time) |")
print("|---|---|---|---|---|---|")
for task, peer in (("schema", "kubeconform"), ("rego", "conftest")):
    s, p = t.get((task, "socle")), t.get((task, peer))
    if not (s and p):
        continue
    print(f"| {task} | {peer} | {p[0]:.2f} | {want/max(p[0],0.001):,.0f} | {p[1]:.0f} | |")
    print(f"| {task} | socle | {s[0]:.2f} | {want/max(s[0],0.001):,.0f} | {s[1]:.0f} | {p[0]/max(s[0],0.001):.2f}x |")
a = t.get(("all", "socle"))
if a:
    print(f"| all rules | socle | {a[0]:.2f} | {want/max(a[0],0.001):,.0f} | {a[1]:.0f} | |")
fails_c = sum(len(r.get("failures") or []) for r in json.load(open(f"{out}/check/conftest.json")))
fails_s = sum(len(r.get("failures") or []) for r in json.load(open(f"{out}/check/socle-rego.json")))
print()
print(f"Rego failures: conftest {fails_c}, socle {fails_s} ({'same' if fails_c == fails_s else 'DIFFERENT'}).")
PY
cat "$out/check-report.md"
