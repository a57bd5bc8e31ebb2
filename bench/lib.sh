# Shared by the bench scripts: paths, tool builds, timing.
# shellcheck shell=bash
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$root/bench/out"
bin="$out/bin"
mkdir -p "$bin"
export GOTOOLCHAIN=local GOFLAGS=${GOFLAGS:--buildvcs=false}
data=${SOCLE_SHARED_DATA:-}
if [ -z "$data" ]; then
  for d in "$root/../shared/data" /work/shared/data; do
    [ -f "$d/MANIFEST.txt" ] && data=$(cd "$d" && pwd) && break
  done
fi

need_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive need_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build_socle() { (cd "$root" && go build -o "$bin/socle" ./cmd/socle); }

go_tool() { # go_tool NAME MODULE@VERSION
  [ -x "$bin/$1" ] || GOBIN="$bin" go install "$2"
}

# apt_mirror prints the Debian mirror the host's apt configuration uses
# for the main archive (not the security one).
apt_mirror() {
  local m=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    m=$(awk '/^URIs:/{u=$2} /^Suites:/{ if ($0 !~ /security/) { print u; exit } }' /etc/apt/sources.list.d/*.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1=="deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$m" ] || { echo "no Debian mirror in the host's apt configuration" >&2; return 1; }
  echo "$m"
}

# measure LABEL CMD...: runs CMD, appends "LABEL seconds peak_kb" to $out/times.
measure() {
  local label=$1; shift
  /usr/bin/time -f "$label %e %M" -a -o "$out/times" "$@"
}
