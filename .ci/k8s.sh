#!/usr/bin/env bash
# Builds a real Kubernetes control plane for the tests from the Go module
# proxy: kube-apiserver, kube-controller-manager (Deployments make pods,
# deletes cascade) and kubectl, etcd, and kwok (fake nodes, so pods reach
# Running without a kubelet). Binaries are cached by version under
# .ci/cache/tools/k8s-VERSION; a cold build takes 15-20 minutes on two
# cores, a warm one nothing. Prints the directory holding the binaries.
#
#   .ci/k8s.sh            # KUBE_VERSION, ETCD_VERSION, KWOK_VERSION override
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
kube=${KUBE_VERSION:-v1.32.13}
etcd=${ETCD_VERSION:-v3.5.16}
kwok=${KWOK_VERSION:-v0.7.0}
out="$(pwd)/.ci/cache/tools/k8s-$kube-etcd-$etcd-kwok-$kwok"
src="$(pwd)/.ci/cache/src"
mkdir -p "$out" "$src"

# staging_version MODULE VERSION prints VERSION if the module proxy serves
# it, else the newest patch of the same minor it does serve (the proxy
# refuses a few, such as k8s.io/endpointslice v0.32.13).
staging_version() {
  if (cd "$src" && go mod download "$1@$2" >/dev/null 2>&1); then echo "$2"; return; fi
  local minor=${2%.*} v
  for v in $(cd "$src" && go list -m -versions "$1" | tr ' ' '\n' | grep "^$minor\." | sort -t. -k3 -n -r); do
    if (cd "$src" && go mod download "$1@$v" >/dev/null 2>&1); then echo "using $1 $v ($2 is not served)" >&2; echo "$v"; return; fi
  done
  echo "$2"
}

# kube-apiserver and kubectl: a throwaway module that requires
# k8s.io/kubernetes and replaces each of its staging modules (which its
# own go.mod points at directories of its repository) by the published
# version of the same release; the sample-* modules are not served.
if [ ! -x "$out/kube-apiserver" ] || [ ! -x "$out/kubectl" ] || [ ! -x "$out/kube-controller-manager" ]; then
  echo "building kube-apiserver, kube-controller-manager and kubectl $kube" >&2
  mod="$src/kubernetes-$kube"
  rm -rf "$mod" && mkdir -p "$mod"
  staging="v0.${kube#v1.}"
  gomod=$(cd "$mod" && go mod download -json "k8s.io/kubernetes@$kube" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  {
    echo "module socle.test/kubernetes"
    echo "go 1.23"
    echo "require k8s.io/kubernetes $kube"
    awk '/=> \.\/staging\/src\// {print $1}' "$gomod" | grep -v '^k8s.io/sample-' | sort -u |
      while read -r m; do echo "replace $m => $m $(staging_version "$m" "$staging")"; done
  } > "$mod/go.mod"
  cat > "$mod/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (cd "$mod" && GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true)
  (cd "$mod" && GOFLAGS=-mod=mod go get "k8s.io/kubernetes@$kube" >/dev/null)
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$kube -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$kube" | cut -d. -f2)"
  (cd "$mod" && GOFLAGS=-mod=mod go build -ldflags "$ldflags" -o "$out/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl)
fi

# etcd: go install refuses the server module (it has replace directives),
# so it is built as the dependency of a two-line main.
if [ ! -x "$out/etcd" ]; then
  echo "building etcd $etcd" >&2
  mod="$src/etcd-$etcd"
  rm -rf "$mod" && mkdir -p "$mod"
  cat > "$mod/go.mod" <<GOMOD
module socle.test/etcd
go 1.23
require go.etcd.io/etcd/server/v3 $etcd
GOMOD
  cat > "$mod/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$mod" && GOFLAGS=-mod=mod go mod tidy >/dev/null && GOFLAGS=-mod=mod go build -ldflags "-s -w" -o "$out/etcd" .)
fi

if [ ! -x "$out/kwok" ]; then
  echo "building kwok $kwok" >&2
  GOBIN="$out" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$kwok"
fi
echo "$out"
