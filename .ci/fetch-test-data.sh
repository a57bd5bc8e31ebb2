#!/usr/bin/env bash
# Fetch test inputs that are published as packages rather than kept in the
# repository. Idempotent; everything lands in .ci/cache (git-ignored).
#  - sarif-2.1.0.json: the official SARIF 2.1.0 JSON schema, as shipped in
#    Microsoft's SARIF SDK multitool package on the npm registry.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p cache
if [ ! -s cache/sarif-2.1.0.json ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent @microsoft/sarif-multitool-linux@5.7.0 >/dev/null)
  tar -xzf "$tmp"/microsoft-sarif-multitool-linux-5.7.0.tgz -C "$tmp" package/sarif-2.1.0.json
  mv "$tmp"/package/sarif-2.1.0.json cache/sarif-2.1.0.json
fi
echo "test data in $(pwd)/cache: $(ls cache | tr '\n' ' ')"
