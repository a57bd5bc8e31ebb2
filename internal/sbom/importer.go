package sbom

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/package-url/packageurl-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
)

// MaxImport bounds an SBOM read by Import.
const MaxImport = 64 << 20

// Imported is an SBOM another tool wrote, read into socle's inventory.
type Imported struct {
	// Format is the document's format and version ("CycloneDX 1.4",
	// "SPDX-2.2"); Tools the tools it names.
	Format string   `json:"format"`
	Tools  []string `json:"tools,omitempty"`
	// Subject is the image digest the document says it describes, when
	// it says.
	Subject string `json:"subject,omitempty"`
	// Inventory holds the operating system and every package, those
	// without an ecosystem included (they are kept, not matched).
	Inventory Inventory `json:"inventory"`
	// Ecosystems counts the packages per ecosystem socle recognised.
	Ecosystems map[string]int `json:"ecosystems"`
	// Unmapped are the packages socle cannot match: no package URL, or
	// one whose type has no advisory ecosystem.
	Unmapped []Package `json:"unmapped,omitempty"`
	// Problems say what was not understood, and what was corrected.
	Problems []string `json:"problems,omitempty"`

	// repeated counts corrections made to many packages alike, said once
	// each in Problems with an example.
	repeated map[string]int
	example  map[string]string
}

// note records a correction that may repeat for many packages.
func (im *Imported) note(kind, example string) {
	if im.repeated == nil {
		im.repeated, im.example = map[string]int{}, map[string]string{}
	}
	if im.repeated[kind] == 0 {
		im.example[kind] = example
	}
	im.repeated[kind]++
}

// ErrNotSBOM is returned for a document that is neither CycloneDX nor
// SPDX JSON.
var ErrNotSBOM = errors.New("not a CycloneDX or SPDX JSON document")

// Import reads a CycloneDX (1.2-1.6) or SPDX (2.1-2.3) JSON SBOM. It
// accepts what it can understand of documents that do not validate (as
// real producers write them) and reports the rest in Problems; nothing
// is dropped silently.
func Import(data []byte) (*Imported, error) {
	if len(data) > MaxImport {
		return nil, fmt.Errorf("SBOM of %d bytes, more than %d", len(data), MaxImport)
	}
	var probe struct {
		BOMFormat   string `json:"bomFormat"`
		SpecVersion string `json:"specVersion"`
		SPDXVersion string `json:"spdxVersion"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotSBOM, err)
	}
	var im *Imported
	var err error
	switch {
	case probe.BOMFormat == "CycloneDX":
		im, err = importCycloneDX(data, probe.SpecVersion)
	case strings.HasPrefix(probe.SPDXVersion, "SPDX-"):
		im, err = importSPDX(data, probe.SPDXVersion)
	default:
		return nil, ErrNotSBOM
	}
	if err != nil {
		return nil, err
	}
	im.finish()
	return im, nil
}

// component is a package of a document, before it becomes a Package.
type component struct {
	name, version, purl, group string
	// source is the source package it was built from, as a pedigree
	// ancestor or a GENERATED_FROM relationship states it.
	source   *component
	licenses []string
	props    map[string]string
}

// finish maps every component's ecosystem once the OS is known, and
// counts what was recognised.
func (im *Imported) finish() {
	for _, kind := range sortedKeys(im.repeated) {
		im.Problems = append(im.Problems, fmt.Sprintf("%d package URLs %s (such as %q)", im.repeated[kind], kind, im.example[kind]))
	}
	im.Ecosystems = map[string]int{}
	for i := range im.Inventory.Packages {
		p := &im.Inventory.Packages[i]
		if p.IsOS() && p.Ecosystem == "" {
			o := im.Inventory.OS
			if d := distroOf(p); !d.Empty() {
				o = d
			}
			if !o.Empty() && o.VersionID != "" {
				completeOSPackage(p, majorDebian(o))
			}
		}
		if p.Ecosystem == "" {
			im.Unmapped = append(im.Unmapped, *p)
			continue
		}
		im.Ecosystems[p.Ecosystem]++
	}
	if n := len(im.Unmapped); n > 0 {
		byType := map[string]int{}
		for _, p := range im.Unmapped {
			byType[cmpOr(p.Type, "no package URL")]++
		}
		var parts []string
		for _, t := range sortedKeys(byType) {
			parts = append(parts, fmt.Sprintf("%d %s", byType[t], t))
		}
		im.Problems = append(im.Problems, fmt.Sprintf("%d packages have no ecosystem socle matches advisories in (%s): kept, not matched", n, strings.Join(parts, ", ")))
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// add turns a document's component into a package.
func (im *Imported) add(c component) {
	p := Package{Name: c.name, Version: c.version, Namespace: c.group, Licenses: c.licenses, Extractor: "sbom-import"}
	if c.purl != "" {
		q, problem := fromPURL(c.purl)
		if problem != "" {
			im.note(problem, c.purl)
		}
		if q != nil {
			p = *q
			p.Licenses, p.Extractor = c.licenses, "sbom-import"
			if p.Version == "" {
				p.Version = c.version
			}
		}
	}
	if c.source != nil && p.SourceName == "" {
		p.SourceName, p.SourceVersion = c.source.name, c.source.version
		if p.SourceVersion == p.Version {
			p.SourceVersion = ""
		}
	}
	// The properties socle, trivy and syft write.
	for k, v := range c.props {
		switch k {
		case "socle:package:ecosystem":
			p.Ecosystem = v
		case "socle:package:source-name", "aquasecurity:trivy:SrcName":
			p.SourceName = v
		case "socle:package:source-version", "aquasecurity:trivy:SrcVersion":
			p.SourceVersion = v
		case "socle:package:path", "aquasecurity:trivy:FilePath", "syft:location:0:path":
			p.Path = v
		case "socle:layer:digest", "aquasecurity:trivy:LayerDigest":
			p.Layer = v
		case "socle:layer:index":
			p.LayerIndex, _ = strconv.Atoi(v)
		case "socle:package:type":
			if p.Type == "" {
				p.Type = v
			}
		}
	}
	im.Inventory.Packages = append(im.Inventory.Packages, p)
}

// fromPURL reads a package URL into a package, correcting the forms real
// producers write that the purl specification does not have.
func fromPURL(s string) (*Package, string) {
	problem := ""
	// JFrog Xray writes pkg:deb/debian:buster:apt@VERSION: the name is
	// missing and the namespace carries the distribution.
	if rest, ok := strings.CutPrefix(s, "pkg:deb/"); ok {
		path, _, _ := strings.Cut(rest, "@")
		if parts := strings.Split(path, ":"); len(parts) == 3 && !strings.Contains(path, "/") {
			problem = "name the package in the namespace (pkg:deb/DISTRO:RELEASE:NAME, as JFrog Xray writes): read as pkg:deb/DISTRO/NAME?distro=RELEASE"
			s = "pkg:deb/" + parts[0] + "/" + parts[2] + strings.TrimPrefix(rest, path) + distroQualifier(rest, parts[1])
		}
	}
	u, err := packageurl.FromString(s)
	if err != nil {
		return nil, "do not parse: kept by name"
	}
	if u.Type == "alpine" { // syft before 0.60: pkg:alpine/NAME
		u.Type, u.Namespace = "apk", "alpine"
		problem = "have the legacy type alpine (syft before 0.60): read as pkg:apk/alpine"
	}
	q := u.Qualifiers.Map()
	p := &Package{Type: u.Type, Name: u.Name, Version: u.Version, Arch: q["arch"], PURL: u.ToString()}
	if e, err := strconv.Atoi(q["epoch"]); err == nil {
		p.Epoch = e
	}
	if up := q["upstream"]; up != "" {
		p.SourceName, p.SourceVersion, _ = strings.Cut(up, "@")
	}
	switch u.Type {
	case "deb", "apk", "rpm":
		p.Namespace = u.Namespace
	case "maven":
		p.Namespace = u.Namespace
		p.Ecosystem = "Maven"
	case "golang":
		if u.Namespace != "" {
			p.Name = u.Namespace + "/" + u.Name
		}
		p.Ecosystem = "Go"
	case "npm":
		if u.Namespace != "" {
			p.Name = u.Namespace + "/" + u.Name
		}
		p.Ecosystem = "npm"
	default:
		p.Namespace = u.Namespace
		p.Ecosystem = languageEcosystems[u.Type]
	}
	return p, problem
}

// distroQualifier adds distro=d to the qualifiers of a purl's rest.
func distroQualifier(rest, d string) string {
	if strings.Contains(rest, "distro=") {
		return ""
	}
	if strings.Contains(rest, "?") {
		return "&distro=" + d
	}
	return "?distro=" + d
}

// languageEcosystems are the OSV ecosystems of the package URL types
// that need no operating system to be matched.
var languageEcosystems = map[string]string{
	"pypi": "PyPI", "gem": "RubyGems", "cargo": "crates.io", "nuget": "NuGet", "composer": "Packagist",
	"hex": "Hex", "pub": "Pub", "cran": "CRAN", "hackage": "Hackage", "conan": "ConanCenter", "bitnami": "Bitnami",
}

// debianCodenames maps Debian and Ubuntu codenames to versions, for the
// distro qualifiers that give a name.
var debianCodenames = map[string]string{
	"stretch": "9", "buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13",
	"bionic": "18.04", "focal": "20.04", "jammy": "22.04", "noble": "24.04",
}

// distroOf reads an OS package's distro qualifier ("debian-11",
// "alpine-3.10.9", "ubuntu-20.04", "buster").
func distroOf(p *Package) OS {
	u, err := packageurl.FromString(p.PURL)
	if err != nil {
		return OS{}
	}
	d := u.Qualifiers.Map()["distro"]
	if d == "" {
		return OS{}
	}
	id, ver, ok := strings.Cut(d, "-")
	if !ok {
		if v, known := debianCodenames[d]; known {
			id, ver = u.Namespace, v
		} else {
			id, ver = u.Namespace, d
		}
	}
	if id == "" {
		id = u.Namespace
	}
	return OS{ID: strings.ToLower(id), VersionID: ver}
}

// majorDebian keeps the major version of Debian ("10.2" is Debian 10,
// the release advisories name).
func majorDebian(o OS) OS {
	if o.ID == "debian" {
		o.VersionID, _, _ = strings.Cut(o.VersionID, ".")
	}
	return o
}

// osFrom reads an operating system's name and version ("debian" "10.2",
// "alpine" "3.15.4").
func osFrom(name, version string) OS {
	return OS{ID: strings.ToLower(strings.Fields(name + " x")[0]), VersionID: version}
}

func importCycloneDX(data []byte, spec string) (*Imported, error) {
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return nil, fmt.Errorf("CycloneDX %s: %w", spec, err)
	}
	im := &Imported{Format: "CycloneDX " + spec}
	if m := bom.Metadata; m != nil {
		im.Tools = cdxTools(m.Tools)
		if c := m.Component; c != nil {
			im.Subject = digestOf(c.PackageURL, c.Version, c.BOMRef)
			if c.Properties != nil {
				for _, p := range *c.Properties {
					if p.Name == "socle:image:platform" {
						im.Inventory.Platform = p.Value
					}
				}
			}
		}
	}
	skipped := map[string]int{}
	var walk func(cs *[]cdx.Component)
	walk = func(cs *[]cdx.Component) {
		if cs == nil {
			return
		}
		for _, c := range *cs {
			switch c.Type {
			case cdx.ComponentTypeOS:
				im.Inventory.OS = osFrom(c.Name, c.Version)
			case cdx.ComponentTypeLibrary, cdx.ComponentTypeApplication, cdx.ComponentTypeFramework, "":
				im.add(component{name: c.Name, version: c.Version, purl: c.PackageURL, group: c.Group,
					licenses: cdxLicenses(c.Licenses), props: cdxProps(c.Properties), source: cdxSource(c.Pedigree)})
			default:
				skipped[string(c.Type)]++
			}
			walk(c.Components)
		}
	}
	walk(bom.Components)
	for _, t := range sortedKeys(skipped) {
		im.Problems = append(im.Problems, fmt.Sprintf("%d components of type %s are not software packages: not imported", skipped[t], t))
	}
	if bom.Services != nil && len(*bom.Services) > 0 {
		im.Problems = append(im.Problems, fmt.Sprintf("%d services: not packages, not imported", len(*bom.Services)))
	}
	return im, nil
}

// cdxSource is the one ancestor of a component's pedigree, which is the
// source package it was built from.
func cdxSource(p *cdx.Pedigree) *component {
	if p == nil || p.Ancestors == nil || len(*p.Ancestors) != 1 {
		return nil
	}
	a := (*p.Ancestors)[0]
	return &component{name: a.Name, version: a.Version, purl: a.PackageURL}
}

func cdxTools(t *cdx.ToolsChoice) []string {
	if t == nil {
		return nil
	}
	var out []string
	if t.Components != nil {
		for _, c := range *t.Components {
			out = append(out, strings.TrimSpace(c.Name+" "+c.Version))
		}
	}
	if t.Tools != nil {
		for _, c := range *t.Tools {
			out = append(out, strings.TrimSpace(c.Vendor+" "+c.Name+" "+c.Version))
		}
	}
	return out
}

func cdxLicenses(ls *cdx.Licenses) []string {
	if ls == nil {
		return nil
	}
	var out []string
	for _, l := range *ls {
		switch {
		case l.Expression != "":
			out = append(out, l.Expression)
		case l.License != nil && l.License.ID != "":
			out = append(out, l.License.ID)
		case l.License != nil && l.License.Name != "":
			out = append(out, l.License.Name)
		}
	}
	return out
}

func cdxProps(ps *[]cdx.Property) map[string]string {
	if ps == nil {
		return nil
	}
	out := map[string]string{}
	for _, p := range *ps {
		if _, seen := out[p.Name]; !seen {
			out[p.Name] = p.Value
		}
	}
	return out
}

// digestOf finds an image digest among the ways documents name it: a
// pkg:oci purl's version, or a sha256: version or reference.
func digestOf(vals ...string) string {
	for _, v := range vals {
		if u, err := packageurl.FromString(v); err == nil && strings.HasPrefix(u.Version, "sha256:") {
			return u.Version
		}
		if strings.HasPrefix(v, "sha256:") && len(v) == 71 {
			return v
		}
	}
	return ""
}

func importSPDX(data []byte, version string) (*Imported, error) {
	doc, err := spdxjson.Read(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", version, err)
	}
	im := &Imported{Format: version}
	if doc.CreationInfo != nil {
		for _, c := range doc.CreationInfo.Creators {
			if c.CreatorType == "Tool" {
				im.Tools = append(im.Tools, c.Creator)
			}
		}
	}
	noPURL, sources := 0, 0
	builtFrom := spdxBuiltFrom(doc)
	for _, p := range doc.Packages {
		if p == nil {
			continue
		}
		purl := spdxPURL(p)
		if strings.EqualFold(p.PrimaryPackagePurpose, "SOURCE") {
			if !builtFrom.isSource[p.PackageSPDXIdentifier] {
				sources++
			}
			continue
		}
		if strings.EqualFold(p.PrimaryPackagePurpose, "OPERATING-SYSTEM") || strings.EqualFold(p.PrimaryPackagePurpose, "OPERATING_SYSTEM") {
			im.Inventory.OS = osFrom(p.PackageName, p.PackageVersion)
			continue
		}
		if d := digestOf(purl, p.PackageVersion, p.PackageName); d != "" && im.Subject == "" && (strings.HasPrefix(purl, "pkg:oci/") || purl == "") {
			im.Subject = d
			continue
		}
		if strings.HasPrefix(purl, "pkg:oci/") || strings.HasPrefix(purl, "pkg:docker/") {
			im.Problems = append(im.Problems, fmt.Sprintf("image %s %s is a container, not a package: not imported", p.PackageName, p.PackageVersion))
			continue
		}
		if purl == "" {
			noPURL++
		}
		im.add(component{name: p.PackageName, version: p.PackageVersion, purl: purl, licenses: spdxLicenses(p), source: builtFrom.source[p.PackageSPDXIdentifier],
			props: spdxSourceInfo(p.PackageSourceInfo)})
	}
	if sources > 0 {
		im.Problems = append(im.Problems, fmt.Sprintf("%d source packages no package is generated from: not installed software, not imported", sources))
	}
	if noPURL > 0 {
		im.Problems = append(im.Problems, fmt.Sprintf("%d packages have no package URL: kept by name", noPURL))
	}
	if n := len(doc.Files); n > 0 {
		im.Problems = append(im.Problems, fmt.Sprintf("%d files listed: not packages, not imported", n))
	}
	return im, nil
}

// spdxSourceInfo reads the layer and path socle writes as a package's
// source information ("layer sha256:… path /usr/lib/…").
func spdxSourceInfo(info string) map[string]string {
	rest, ok := strings.CutPrefix(info, "layer ")
	if !ok {
		return nil
	}
	layer, path, ok := strings.Cut(rest, " path /")
	if !ok || !strings.HasPrefix(layer, "sha256:") {
		return nil
	}
	return map[string]string{"socle:layer:digest": layer, "socle:package:path": path}
}

func spdxPURL(p *spdx.Package) string {
	for _, ref := range p.PackageExternalReferences {
		if ref != nil && ref.RefType == "purl" {
			return ref.Locator
		}
	}
	return ""
}

// builtFrom maps each package to the source package it is
// GENERATED_FROM (or that GENERATES it).
type builtFrom struct {
	source   map[common.ElementID]*component
	isSource map[common.ElementID]bool
}

func spdxBuiltFrom(doc *spdx.Document) builtFrom {
	byID := map[common.ElementID]*spdx.Package{}
	for _, p := range doc.Packages {
		if p != nil {
			byID[p.PackageSPDXIdentifier] = p
		}
	}
	out := builtFrom{source: map[common.ElementID]*component{}, isSource: map[common.ElementID]bool{}}
	for _, r := range doc.Relationships {
		if r == nil {
			continue
		}
		bin, src := r.RefA.ElementRefID, r.RefB.ElementRefID
		switch r.Relationship {
		case common.TypeRelationshipGeneratedFrom:
		case common.TypeRelationshipGenerates:
			bin, src = src, bin
		default:
			continue
		}
		if s, ok := byID[src]; ok && byID[bin] != nil {
			out.source[bin] = &component{name: s.PackageName, version: s.PackageVersion, purl: spdxPURL(s)}
			out.isSource[src] = true
		}
	}
	return out
}

func spdxLicenses(p *spdx.Package) []string {
	for _, l := range []string{p.PackageLicenseConcluded, p.PackageLicenseDeclared} {
		if l != "" && l != "NOASSERTION" && l != "NONE" {
			return []string{l}
		}
	}
	return nil
}
