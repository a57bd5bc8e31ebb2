#!/usr/bin/env bash
# Compare socle and syft on the same images, in one run: wall time and
# peak memory (socle cold, socle with a warm layer cache, syft), and the
# package lists each finds, with the differences explained.
#
#   bench/scan.sh            # writes bench/out/scan-report.md
#
# Images: the real Alpine 3.10 image of the shared data; a Debian bookworm
# minbase made with debootstrap from the host's apt mirror; and that base
# with real Go binaries added (syft's, socle's, and the shared age-keygen),
# for Go module inventories.
source "$(dirname "$0")/lib.sh"
apt_install time debootstrap python3
build_socle
go_tool syft github.com/anchore/syft/cmd/syft@v1.54.1
go_tool crane github.com/google/go-containerregistry/cmd/crane@v0.22.1
imgs="$out/images"
mkdir -p "$imgs"
: > "$out/times"

gunzip -c "$data/images/alpine-310.tar.gz" > "$imgs/alpine-310.tar"

if [ ! -f "$imgs/debian-minbase.tar" ]; then
  mirror=$(apt_mirror)
  rootfs="$out/rootfs"
  need_root rm -rf "$rootfs"
  need_root debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
  need_root tar -C "$rootfs" --numeric-owner -cf "$out/rootfs.tar" .
  "$bin/crane" append --oci-empty-base -f "$out/rootfs.tar" -t socle.bench/debian-minbase:bookworm -o "$imgs/debian-minbase.tar" >/dev/null
fi
if [ ! -f "$imgs/debian-goapps.tar" ]; then
  tmp=$(mktemp -d)
  mkdir -p "$tmp/usr/local/bin"
  cp "$bin/syft" "$bin/socle" "$data/gobin/age-keygen" "$tmp/usr/local/bin/"
  tar -C "$tmp" --numeric-owner -cf "$out/goapps.tar" usr
  rm -rf "$tmp"
  "$bin/crane" append --oci-empty-base -f "$out/rootfs.tar" -f "$out/goapps.tar" -t socle.bench/debian-goapps:1 -o "$imgs/debian-goapps.tar" >/dev/null
fi

report="$out/scan-report.md"
{
  echo "# socle vs syft, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "socle $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo dev); syft v1.54.1; $(nproc) cores."
  echo
} > "$report"
for img in alpine-310 debian-minbase debian-goapps; do
  tarball="$imgs/$img.tar"
  dd="$out/data-$img"
  rm -rf "$dd"
  measure "$img socle-cold" "$bin/socle" --data-dir "$dd" sbom --progress=false -o cyclonedx --file "$out/$img.socle.json" "docker-archive:$tarball"
  measure "$img socle-warm" "$bin/socle" --data-dir "$dd" sbom --progress=false -o cyclonedx --file "$out/$img.socle.json" "docker-archive:$tarball"
  measure "$img syft" "$bin/syft" -q "docker-archive:$tarball" -o "cyclonedx-json=$out/$img.syft.json"
done
python3 "$root/bench/compare.py" "$out" alpine-310 debian-minbase debian-goapps >> "$report"

# osv-scanner, offline, on the same OSV records: the Alpine 3.10 secdb as
# socle converts it, written as osv.dev's Alpine/all.zip in osv-scanner's
# local database. osv-scanner v2.6.0 needs Go 1.27: it alone is built with
# the go1.27.3 toolchain from the module proxy.
GOTOOLCHAIN=go1.27.3 go_tool osv-scanner github.com/google/osv-scanner/v2/cmd/osv-scanner@v2.6.0
osvdb="$out/osvdb"
rm -rf "$osvdb"
(cd "$root" && go run ./bench/cmd/osvdb "$osvdb/osv-scalibr" "$data"/alpine/vuln-list-alpine-3.10/*.json)
for img in alpine-310 hello-world; do
  case $img in
    alpine-310) tarball="$imgs/alpine-310.tar" ;;
    hello-world) tarball="$data/images/hello-world-v25.tar" ;;
  esac
  dd="$out/data-vulns-$img"
  rm -rf "$dd"
  "$bin/socle" --data-dir "$dd" db import "$data/alpine/vuln-list-alpine-3.10" >/dev/null
  measure "$img socle-scan" "$bin/socle" --data-dir "$dd" scan --progress=false -o json --file "$out/$img.socle-scan.json" "docker-archive:$tarball" || true
  measure "$img socle-scan-warm" "$bin/socle" --data-dir "$dd" scan --progress=false -o json --file "$out/$img.socle-scan.json" "docker-archive:$tarball" || true
  # Exit status 1: vulnerabilities found; 128: no package source (hello-world).
  HOME="$out" OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY="$osvdb" measure "$img osv-scanner" "$bin/osv-scanner" scan image --archive --offline \
    --offline-vulnerabilities --format json --output-file "$out/$img.osv-scanner.json" "$tarball" 2>/dev/null || true
done
python3 "$root/bench/compare_vulns.py" "$out" alpine-310 hello-world >> "$report"
cat "$report"
