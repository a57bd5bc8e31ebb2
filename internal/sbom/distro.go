package sbom

import (
	"bufio"
	"strconv"
	"strings"

	"github.com/google/osv-scalibr/extractor"
	apkmeta "github.com/google/osv-scalibr/extractor/filesystem/os/apk/metadata"
	dpkgmeta "github.com/google/osv-scalibr/extractor/filesystem/os/dpkg/metadata"
	"github.com/google/osv-scalibr/extractor/filesystem/os/ecosystem"
	rpmmeta "github.com/google/osv-scalibr/extractor/filesystem/os/rpm/metadata"
	"github.com/package-url/packageurl-go"

	"github.com/socle-dev/socle/internal/layer"
	"github.com/socle-dev/socle/internal/purl"
)

// detectOS reads the operating system from the merged identification
// files, following /etc/os-release when it is a link (as on Debian, where
// it points to ../usr/lib/os-release) without ever leaving the image.
func detectOS(meta map[string]metaEntry) OS {
	content, ok := resolveMeta(meta, "etc/os-release")
	if !ok {
		content, ok = resolveMeta(meta, "usr/lib/os-release")
	}
	var o OS
	if ok {
		kv := ParseOSRelease(content)
		o = OS{
			ID:         kv["ID"],
			IDLike:     kv["ID_LIKE"],
			VersionID:  kv["VERSION_ID"],
			Codename:   kv["VERSION_CODENAME"],
			PrettyName: kv["PRETTY_NAME"],
			CPEName:    kv["CPE_NAME"],
		}
	}
	if c, ok := resolveMeta(meta, "etc/debian_version"); ok && (o.ID == "" || o.ID == "debian") {
		o.Release = strings.TrimSpace(c)
		if o.ID == "" {
			o.ID = "debian"
			if major, _, _ := strings.Cut(o.Release, "."); isDigits(major) {
				o.VersionID = major
			}
		}
	}
	if c, ok := resolveMeta(meta, "etc/alpine-release"); ok && (o.ID == "" || o.ID == "alpine") {
		o.Release = strings.TrimSpace(c)
		if o.ID == "" {
			o.ID, o.VersionID = "alpine", o.Release
		}
	}
	return o
}

func resolveMeta(meta map[string]metaEntry, p string) (string, bool) {
	for hops := 0; hops < 8; hops++ {
		e, ok := meta[p]
		if !ok {
			return "", false
		}
		if e.link == "" {
			return e.content, true
		}
		p = layer.ResolveLink(p, e.link)
	}
	return "", false
}

// ParseOSRelease parses the KEY=value lines of an os-release file,
// removing shell quoting.
func ParseOSRelease(s string) map[string]string {
	kv := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = v[1 : len(v)-1]
		}
		kv[strings.TrimSpace(k)] = v
	}
	return kv
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// completeOSPackage fills the OSV ecosystem and the package URL of an OS
// package once the image's operating system is known, with the same
// rules osv-scalibr applies to a whole-filesystem scan.
func completeOSPackage(p *Package, o OS) {
	if !p.IsOS() {
		return
	}
	sp := &extractor.Package{Name: p.Name, Version: p.Version, PURLType: p.Type}
	switch p.Type {
	case "deb", "opkg":
		sp.Metadata = &dpkgmeta.Metadata{
			PackageName: p.Name, PackageVersion: p.Version,
			SourceName: p.SourceName, SourceVersion: p.SourceVersion,
			OSID: o.ID, OSVersionCodename: o.Codename, OSVersionID: o.VersionID,
			Architecture: p.Arch,
		}
	case "apk":
		sp.Metadata = &apkmeta.Metadata{
			PackageName: p.Name, OriginName: p.SourceName,
			OSID: o.ID, OSVersionID: o.VersionID, Architecture: p.Arch,
		}
	case "rpm":
		sp.Metadata = &rpmmeta.Metadata{
			PackageName: p.Name, Epoch: p.Epoch,
			OSID: o.ID, OSVersionID: o.VersionID, OSCPEName: o.CPEName,
			Architecture: p.Arch,
		}
	}
	if o.ID != "" {
		p.Ecosystem = ecosystem.MakeEcosystem(sp.Metadata).String()
	}
	if u := sp.PURL(); u != nil {
		p.PURL = u.String()
	}
}

// canonicalPURL puts a package's URL in the purl specification's
// canonical form: the type's case rules, sorted qualifiers, no empty or
// placeholder values (the ?source=UNKNOWN some extractors write), and
// for an OS package built from another source package, upstream=SOURCE
// (with its version when it differs).
func canonicalPURL(p *Package) {
	if p.PURL == "" {
		return
	}
	if p.Type == "golang" && p.Name == "go" {
		// The Go standard library: the purl specification has no form
		// for it (golang needs a namespace); this is the one syft,
		// grype and Dependency-Track use.
		p.PURL = "pkg:golang/stdlib@" + p.Version
		return
	}
	u, err := purl.Parse(p.PURL)
	if err != nil {
		return // kept as the extractor wrote it
	}
	if p.IsOS() && p.SourceName != "" && p.SourceName != p.Name && u.Qualifiers.Map()["upstream"] == "" && u.Qualifiers.Map()["origin"] == "" {
		up := p.SourceName
		if p.SourceVersion != "" && p.SourceVersion != p.Version {
			up += "@" + p.SourceVersion
		}
		// osv-scalibr's source and sourceversion qualifiers say the same
		// in a form the deb and rpm types do not define.
		q := packageurl.Qualifiers{{Key: "upstream", Value: up}}
		for _, kv := range u.Qualifiers {
			if kv.Key != "source" && kv.Key != "sourceversion" && kv.Key != "sourcerpm" {
				q = append(q, kv)
			}
		}
		u.Qualifiers = q
		if u, err = purl.Normalize(u); err != nil {
			return
		}
	}
	p.PURL = u.ToString()
}
