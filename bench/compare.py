#!/usr/bin/env python3
"""Compare the package lists socle and syft wrote as CycloneDX, and the
times recorded by bench/scan.sh. Prints a Markdown report."""
import json
import sys
from collections import Counter
from urllib.parse import unquote


def packages(path):
    """(purl type, namespace/name, version) of every component with a purl."""
    with open(path) as f:
        bom = json.load(f)
    out = set()
    for c in bom.get("components", []) or []:
        purl = c.get("purl", "")
        if not purl.startswith("pkg:"):
            continue
        body = purl[4:].split("?")[0].split("#")[0]
        typ, _, rest = body.partition("/")
        name, at, version = rest.rpartition("@")
        if not at:
            name, version = rest, ""
        name = unquote(name).lower()
        version = unquote(version)
        if typ in ("deb", "apk", "rpm"):
            name = name.split("/")[-1]  # the distro namespace differs between tools
        if typ == "golang":
            # syft writes Go versions with their "v", osv-scalibr without;
            # both name the toolchain differently (stdlib / go).
            version = version.removeprefix("v").removeprefix("go")
            if name in ("stdlib", "go"):
                name = "go toolchain"
            if version == "(devel)":
                version = ""
        out.add((typ, name, version))
    return out


def reason(p):
    """Why a package may be found by one tool only, when it is known."""
    typ, name, version = p
    if typ == "golang" and not version:
        return " — a Go main module without a version (GOPATH or local build): syft names the command path, osv-scalibr only a module it can version; nothing can be matched against it"
    return ""


def times(outdir):
    t = {}
    with open(f"{outdir}/times") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 4 and not line.startswith("Command"):
                t[(parts[0], parts[1])] = (float(parts[2]), int(parts[3]) / 1024)
    return t


def main():
    outdir, images = sys.argv[1], sys.argv[2:]
    t = times(outdir)
    print("| image | socle cold s | socle warm s | syft s | syft/socle cold | syft/socle warm | socle peak MiB | syft peak MiB | peak ratio syft/socle |")
    print("|---|---|---|---|---|---|---|---|---|")
    for img in images:
        sc, sw, sy = t.get((img, "socle-cold")), t.get((img, "socle-warm")), t.get((img, "syft"))
        if not (sc and sw and sy):
            continue
        print(f"| {img} | {sc[0]:.2f} | {sw[0]:.2f} | {sy[0]:.2f} | {sy[0]/max(sc[0],0.01):.1f}x | {sy[0]/max(sw[0],0.01):.1f}x "
              f"| {sc[1]:.0f} | {sy[1]:.0f} | {sy[1]/max(sc[1],1):.1f}x |")
    print()
    for img in images:
        s, y = packages(f"{outdir}/{img}.socle.json"), packages(f"{outdir}/{img}.syft.json")
        both = s & y
        print(f"## {img}: socle {len(s)}, syft {len(y)}, both {len(both)}")
        print()
        for label, only in (("only socle", s - y), ("only syft", y - s)):
            if not only:
                print(f"- {label}: none")
                continue
            kinds = Counter(p[0] for p in only)
            print(f"- {label}: {len(only)} ({', '.join(f'{k}: {v}' for k, v in kinds.most_common())})")
            for p in sorted(only)[:12]:
                print(f"  - `{p[0]}` {p[1]} {p[2] or '(no version)'}{reason(p)}")
        print()


if __name__ == "__main__":
    main()
