package sbom

import (
	"strings"

	"github.com/facebookincubator/nvdtools/wfn"
	"github.com/package-url/packageurl-go"
	"github.com/socle-dev/socle/internal/purl"
)

// osVendors names the CPE vendor and product NVD uses for the
// distributions whose os-release carries no CPE_NAME.
var osVendors = map[string][2]string{
	"debian":    {"debian", "debian_linux"},
	"ubuntu":    {"canonical", "ubuntu_linux"},
	"alpine":    {"alpinelinux", "alpine_linux"},
	"rhel":      {"redhat", "enterprise_linux"},
	"centos":    {"centos", "centos"},
	"rocky":     {"rocky", "rocky_linux"},
	"almalinux": {"almalinux", "almalinux"},
	"fedora":    {"fedoraproject", "fedora"},
	"opensuse":  {"opensuse", "leap"},
	"sles":      {"suse", "linux_enterprise_server"},
	"amzn":      {"amazon", "amazon_linux"},
	"wolfi":     {"chainguard", "wolfi"},
}

// OSCPE is the CPE 2.3 name of the operating system: its os-release
// CPE_NAME when it has one (either binding), otherwise the NVD name of
// a known distribution at its VERSION_ID. Empty when neither is known.
func OSCPE(o OS) string {
	if o.CPEName != "" {
		if a, err := wfn.Parse(o.CPEName); err == nil && a.Part == "o" {
			return a.BindToFmtString()
		}
	}
	vp, ok := osVendors[o.ID]
	if !ok || o.VersionID == "" {
		return ""
	}
	return bindCPE("o", vp[0], vp[1], o.VersionID)
}

// PackageCPE is the CPE 2.3 name of an operating system package, built
// as syft and Dependency-Track build them for packages NVD knows by
// their upstream project: vendor and product are the source package's
// name, the version is the upstream version, without the epoch and the
// distribution's revision (NVD versions are upstream's). Empty for
// packages that are not operating system packages, or whose version
// cannot be read.
func PackageCPE(p *Package) string {
	if !p.IsOS() {
		return ""
	}
	name := p.SourceName
	if name == "" {
		name = p.Name
	}
	version := upstreamVersion(sourceVersion(p))
	if name == "" || version == "" {
		return ""
	}
	return bindCPE("a", name, name, version)
}

// upstreamVersion strips a distribution version ("1:2.36-9+deb12u4",
// "1.2.3-r0", "3.0.7-27.el9") down to the upstream part ("2.36").
func upstreamVersion(v string) string {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i > 0 {
		v = v[:i]
	}
	return v
}

// bindCPE formats a CPE 2.3 name with every other attribute ANY. Each
// value is quoted as the CPE naming specification requires; a value
// that cannot be quoted gives no name.
func bindCPE(part, vendor, product, version string) string {
	a := wfn.NewAttributesWithAny()
	a.Part = part
	for dst, v := range map[*string]string{&a.Vendor: strings.ToLower(vendor), &a.Product: strings.ToLower(product), &a.Version: version} {
		q, err := wfn.WFNize(v)
		if err != nil {
			return ""
		}
		*dst = q
	}
	return a.BindToFmtString()
}

// SourcePURL is the package URL of the source package an operating
// system package was built from, as the purl specification spells
// source packages (arch=source for deb, arch=src for rpm, no arch for
// apk). Empty when p names no source of its own.
func SourcePURL(p *Package) string {
	if !p.IsOS() || p.SourceName == "" || p.PURL == "" {
		return ""
	}
	u, err := purl.Parse(p.PURL)
	if err != nil {
		return ""
	}
	version := sourceVersion(p)
	var q packageurl.Qualifiers
	for _, kv := range u.Qualifiers {
		switch kv.Key {
		case "arch", "upstream":
		default:
			q = append(q, kv)
		}
	}
	switch p.Type {
	case "deb":
		q = append(q, packageurl.Qualifier{Key: "arch", Value: "source"})
	case "rpm":
		q = append(q, packageurl.Qualifier{Key: "arch", Value: "src"})
	}
	src, err := purl.Normalize(*packageurl.NewPackageURL(u.Type, u.Namespace, p.SourceName, version, q, ""))
	if err != nil {
		return ""
	}
	return src.ToString()
}

// sourceVersion is the version of p's source package, which is p's own
// when the package database does not say otherwise.
func sourceVersion(p *Package) string {
	if p.SourceVersion != "" {
		return p.SourceVersion
	}
	return p.Version
}
