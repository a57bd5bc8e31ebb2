#!/usr/bin/env bash
# Builds BuildKit's buildkitd and buildctl from the Go module proxy, for
# the Dockerfile build tests (go install refuses the module: its go.mod
# has exclude directives, so it is built as the dependency of a
# throwaway module). Cached by version under .ci/cache/tools; prints the
# directory holding them. buildkitd runs as root with runc and the
# native snapshotter.
#
#   .ci/buildkit.sh            # BUILDKIT_VERSION overrides
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
version=${BUILDKIT_VERSION:-v0.25.2}
out="$(pwd)/.ci/cache/tools/buildkit-$version"
if [ ! -x "$out/buildkitd" ] || [ ! -x "$out/buildctl" ]; then
  echo "building buildkitd and buildctl $version" >&2
  mod="$(pwd)/.ci/cache/src/buildkit-$version"
  rm -rf "$mod" && mkdir -p "$mod" "$out"
  cat > "$mod/go.mod" <<GOMOD
module socle.test/buildkit
go 1.24
require github.com/moby/buildkit $version
GOMOD
  cat > "$mod/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
GO
  (cd "$mod" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 &&
    GOFLAGS=-mod=mod go build -ldflags "-s -w" -o "$out/" github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl)
fi
echo "$out"
