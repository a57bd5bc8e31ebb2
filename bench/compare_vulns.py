#!/usr/bin/env python3
"""Compare socle's and osv-scanner's findings on the same images and the
same OSV records (bench/scan.sh): time, peak memory, and the (source
package, record) pairs each reports, with any difference listed."""
import json
import os
import sys

from compare import times


def socle_pairs(path):
    with open(path) as f:
        doc = json.load(f)
    out = set()
    for f in doc.get("findings") or []:
        name = f["match_key"]["name"] if "match_key" in f else f["package"]["name"]
        for a in f.get("advisories") or []:
            out.add((name, a))
    return out


def osv_pairs(path):
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return set()
    with open(path) as f:
        doc = json.load(f)
    out = set()
    for r in doc.get("results") or []:
        for p in r.get("packages") or []:
            for v in p.get("vulnerabilities") or []:
                out.add((p["package"]["name"], v["id"]))
    return out


def main():
    outdir, images = sys.argv[1], sys.argv[2:]
    t = times(outdir)
    print()
    print("## socle vs osv-scanner v2.6.0, offline, same OSV records")
    print()
    print("| image | socle scan s | socle warm s | osv-scanner s | osv-scanner/socle | osv-scanner/socle warm | socle MiB | osv-scanner MiB | pairs socle | pairs osv-scanner | agree |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for img in images:
        sc, sw, os_ = t.get((img, "socle-scan")), t.get((img, "socle-scan-warm")), t.get((img, "osv-scanner"))
        s, o = socle_pairs(f"{outdir}/{img}.socle-scan.json"), osv_pairs(f"{outdir}/{img}.osv-scanner.json")
        if not (sc and sw and os_):
            continue
        print(f"| {img} | {sc[0]:.2f} | {sw[0]:.2f} | {os_[0]:.2f} | {os_[0]/max(sc[0],0.01):.1f}x | {os_[0]/max(sw[0],0.01):.1f}x "
              f"| {sc[1]:.0f} | {os_[1]:.0f} | {len(s)} | {len(o)} | {'yes' if s == o else 'NO'} |")
    print()
    for img in images:
        s, o = socle_pairs(f"{outdir}/{img}.socle-scan.json"), osv_pairs(f"{outdir}/{img}.osv-scanner.json")
        for label, only in (("only socle", s - o), ("only osv-scanner", o - s)):
            if only:
                print(f"- {img}, {label}: " + ", ".join(f"{p} {a}" for p, a in sorted(only)))
    print("osv-scanner names Alpine packages by their origin (openssl), socle by the binary package with the source it matched on;")
    print("pairs are compared on the source package.")


if __name__ == "__main__":
    main()
