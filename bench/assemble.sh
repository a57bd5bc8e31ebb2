#!/usr/bin/env bash
# Time socle's Debian assembler against debootstrap, in one run, with warm
# package caches for both, on the same requested package set, from the
# mirror of the host's apt configuration.
#
#   bench/assemble.sh            # writes bench/out/assemble-report.md
#   RUNS=5 bench/assemble.sh
#
# socle assembles exactly the requested packages and their dependencies
# into an OCI image (no daemon, no chroot, reproducible digest).
# debootstrap cannot install fewer than the minbase "required" set, so it
# installs that set plus the same packages (--include) into a directory,
# running maintainer scripts in a chroot: that is what a team uses today
# to get these packages. The report gives both package counts.
source "$(dirname "$0")/lib.sh"
apt_install time debootstrap debian-archive-keyring python3
build_socle
pkgs=(base-files ca-certificates tzdata netbase libc6 zlib1g libssl3 media-types mailcap libgcc-s1)
runs=${RUNS:-3}
mirror=$(apt_mirror)
dd="$out/assemble-data"
debcache="$out/debootstrap-cache"
root_dir="$out/debootstrap-root"
mkdir -p "$dd" "$debcache"

socle_assemble() {
  rm -rf "$out/assembled"
  "$bin/socle" --data-dir "$dd" assemble --epoch 1700000000 --oci-layout "$out/assembled" "${pkgs[@]}"
}
debootstrap_dir() {
  need_root rm -rf "$root_dir"
  need_root debootstrap --variant=minbase --cache-dir="$debcache" \
    --include="$(IFS=,; echo "${pkgs[*]}")" bookworm "$root_dir" "$mirror" >/dev/null
}
seconds() { # seconds CMD...: wall time of CMD
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null
  t1=$(date +%s.%N)
  python3 -c "print(f'{$t1-$t0:.2f}')"
}

# Warm both caches (and keep the first digest).
first=$(socle_assemble | awk '{print $1}')
debootstrap_dir
socle_times=() deb_times=()
for _ in $(seq "$runs"); do
  socle_times+=("$(seconds socle_assemble)")
  deb_times+=("$(seconds debootstrap_dir)")
done
last=$(socle_assemble | awk '{print $1}')
socle_pkgs=$(socle_assemble | sed -E 's/.* ([0-9]+) packages.*/\1/')
deb_pkgs=$(need_root chroot "$root_dir" dpkg-query -W -f '${binary:Package}\n' | wc -l)
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
sm=$(median "${socle_times[@]}")
dm=$(median "${deb_times[@]}")

report="$out/assemble-report.md"
{
  echo "# socle assemble vs debootstrap, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "bookworm (+ bookworm-security for socle), requested: ${pkgs[*]}; warm caches; $runs runs; $(nproc) cores."
  echo
  echo "| tool | packages installed | runs (s) | median (s) |"
  echo "|---|---|---|---|"
  echo "| socle assemble (OCI image) | $socle_pkgs | ${socle_times[*]} | $sm |"
  echo "| debootstrap --variant=minbase --include (directory) | $deb_pkgs | ${deb_times[*]} | $dm |"
  echo
  python3 -c "print(f'debootstrap / socle: {$dm/$sm:.1f}x')"
  echo
  if [ "$first" = "$last" ]; then
    echo "Reproducible: every socle run gave $first."
  else
    echo "NOT reproducible: $first then $last."
  fi
} > "$report"
cat "$report"
