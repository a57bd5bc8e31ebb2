package sbom

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/package-url/packageurl-go"
)

// ToolName and ToolVersion identify socle in the documents it writes.
const ToolName = "socle"

// ToolVersion is set by the build; "dev" otherwise.
var ToolVersion = "dev"

// ImageName describes the image a document is about.
type ImageName struct {
	// Repository is the image's repository, empty when unknown.
	Repository string
	// Tag is the tag it was read through, if any.
	Tag string
}

// ImagePURL returns the pkg:oci package URL of an image.
func ImagePURL(repository, digest string) string {
	name := repository
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	if name == "" {
		name = "image"
	}
	q := packageurl.Qualifiers{}
	if repository != "" {
		q = append(q, packageurl.Qualifier{Key: "repository_url", Value: repository})
	}
	return packageurl.NewPackageURL("oci", "", strings.ToLower(name), digest, q, "").ToString()
}

// ComponentRef returns the bom-ref of the i-th package of an inventory.
func ComponentRef(i int, p *Package) string {
	if p.PURL != "" {
		return p.PURL + "#" + strconv.Itoa(i)
	}
	return fmt.Sprintf("pkg-%d", i)
}

// CycloneDX builds a CycloneDX BOM of the inventory: the image as the
// metadata component, its operating system, and one component per
// package with the layer that introduced it as properties.
func CycloneDX(inv *Inventory, name ImageName) *cdx.BOM {
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + uuidFromDigest(inv.Digest)
	bom.Metadata = &cdx.Metadata{
		Timestamp: inv.AnalyzedAt.UTC().Format("2006-01-02T15:04:05Z"),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: ToolName, Version: ToolVersion,
		}}},
	}
	imgName := name.Repository
	if imgName == "" {
		imgName = inv.Digest
	}
	root := cdx.Component{
		BOMRef:     inv.Digest,
		Type:       cdx.ComponentTypeContainer,
		Name:       imgName,
		Version:    inv.Digest,
		PackageURL: ImagePURL(name.Repository, inv.Digest),
	}
	props := []cdx.Property{{Name: "socle:image:config", Value: inv.Config}}
	if inv.Platform != "" {
		props = append(props, cdx.Property{Name: "socle:image:platform", Value: inv.Platform})
	}
	if name.Tag != "" {
		props = append(props, cdx.Property{Name: "socle:image:tag", Value: name.Tag})
	}
	for _, l := range inv.Layers {
		props = append(props, cdx.Property{Name: "socle:image:layer", Value: fmt.Sprintf("%d %s", l.Index, l.Digest)})
	}
	root.Properties = &props
	bom.Metadata.Component = &root

	comps := make([]cdx.Component, 0, len(inv.Packages)+1)
	deps := []string{}
	if !inv.OS.Empty() {
		osRef := "os:" + inv.OS.ID + "@" + inv.OS.VersionID
		comps = append(comps, cdx.Component{
			BOMRef: osRef, Type: cdx.ComponentTypeOS, Name: inv.OS.ID, Version: inv.OS.VersionID,
			Description: inv.OS.PrettyName, CPE: OSCPE(inv.OS),
		})
		deps = append(deps, osRef)
	}
	for i := range inv.Packages {
		p := &inv.Packages[i]
		c := cdx.Component{
			BOMRef:     ComponentRef(i, p),
			Type:       cdx.ComponentTypeLibrary,
			Group:      p.Namespace,
			Name:       p.Name,
			Version:    p.Version,
			PackageURL: p.PURL,
			CPE:        PackageCPE(p),
		}
		if src := SourcePURL(p); src != "" {
			// Built from: CycloneDX records a binary's source as its
			// pedigree's ancestor.
			c.Pedigree = &cdx.Pedigree{Ancestors: &[]cdx.Component{{
				Type: cdx.ComponentTypeLibrary, Name: p.SourceName, Version: sourceVersion(p), PackageURL: src,
			}}}
		}
		if len(p.Licenses) > 0 {
			ls := make(cdx.Licenses, 0, len(p.Licenses))
			for _, l := range p.Licenses {
				ls = append(ls, licenseChoice(l))
			}
			c.Licenses = &ls
		}
		pp := []cdx.Property{
			{Name: "socle:package:type", Value: p.Type},
			{Name: "socle:package:path", Value: p.Path},
			{Name: "socle:layer:digest", Value: p.Layer},
			{Name: "socle:layer:index", Value: strconv.Itoa(p.LayerIndex)},
		}
		if p.SourceName != "" {
			pp = append(pp, cdx.Property{Name: "socle:package:source-name", Value: p.SourceName})
		}
		if p.SourceVersion != "" {
			pp = append(pp, cdx.Property{Name: "socle:package:source-version", Value: p.SourceVersion})
		}
		if p.Ecosystem != "" {
			pp = append(pp, cdx.Property{Name: "socle:package:ecosystem", Value: p.Ecosystem})
		}
		c.Properties = &pp
		comps = append(comps, c)
		deps = append(deps, c.BOMRef)
	}
	bom.Components = &comps
	bom.Dependencies = &[]cdx.Dependency{{Ref: root.BOMRef, Dependencies: &deps}}
	return bom
}

// licenseChoice records an SPDX identifier as such and anything else as
// a license name.
func licenseChoice(l string) cdx.LicenseChoice {
	if n, ok := normalizeLicense(l); ok {
		if strings.ContainsAny(n, " ()") || strings.HasPrefix(n, "LicenseRef-") {
			return cdx.LicenseChoice{Expression: n}
		}
		return cdx.LicenseChoice{License: &cdx.License{ID: n}}
	}
	return cdx.LicenseChoice{License: &cdx.License{Name: l}}
}

// WriteCycloneDX writes a BOM as CycloneDX 1.6 JSON.
func WriteCycloneDX(w io.Writer, bom *cdx.BOM) error {
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	return enc.EncodeVersion(bom, cdx.SpecVersion1_6)
}

// uuidFromDigest derives a stable version-4-shaped UUID from a digest,
// so that documents about the same image are reproducible.
func uuidFromDigest(d string) string {
	h := strings.TrimPrefix(d, "sha256:")
	for len(h) < 32 {
		h += "0"
	}
	b := []byte(h[:32])
	b[12] = '4'
	switch b[16] {
	case '8', '9', 'a', 'b':
	default:
		b[16] = '8'
	}
	s := string(b)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}
