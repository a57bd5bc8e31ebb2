package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"

	"github.com/github/go-spdx/v2/spdxexp"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// spdxLicense returns l in its canonical SPDX form ("zlib" becomes
// "Zlib") when it is an expression made of identifiers on the SPDX
// license list, and false otherwise. Package databases also hold free
// text ("GPL2", "MIT BSD GPL2+"), which is kept as a name, never claimed
// as an identifier. Deprecated identifiers are refused: CycloneDX 1.6
// does not list them all.
func normalizeLicense(l string) (string, bool) {
	ok, invalid := spdxexp.ValidateAndNormalizeLicensesWithOptions([]string{l}, spdxexp.ValidateLicensesOptions{FailDeprecatedLicenses: true, FailAllDocumentRefs: true})
	if len(invalid) > 0 || len(ok) != 1 {
		return "", false
	}
	return ok[0], true
}

// SPDX builds an SPDX 2.3 document of the inventory: the image as the
// described package, containing one package per inventory package.
func SPDX(inv *Inventory, name ImageName) *spdx.Document {
	imgName := name.Repository
	if imgName == "" {
		imgName = inv.Digest
	}
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      imgName,
		DocumentNamespace: "https://spdx.org/spdxdocs/socle-" + uuidFromDigest(inv.Digest),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: ToolName + "-" + ToolVersion}},
			Created:  inv.AnalyzedAt.UTC().Format("2006-01-02T15:04:05Z"),
		},
	}
	rootID := common.ElementID("Image-" + spdxSafe(inv.Digest))
	root := &spdx.Package{
		PackageName:             imgName,
		PackageSPDXIdentifier:   rootID,
		PackageVersion:          inv.Digest,
		PackageDownloadLocation: "NOASSERTION",
		PrimaryPackagePurpose:   "CONTAINER",
		PackageLicenseConcluded: "NOASSERTION",
		PackageLicenseDeclared:  "NOASSERTION",
		PackageCopyrightText:    "NOASSERTION",
		PackageExternalReferences: []*spdx.PackageExternalReference{{
			Category: common.CategoryPackageManager, RefType: "purl", Locator: ImagePURL(name.Repository, inv.Digest),
		}},
	}
	doc.Packages = append(doc.Packages, root)
	doc.Relationships = append(doc.Relationships, &spdx.Relationship{
		RefA:         common.MakeDocElementID("", "DOCUMENT"),
		RefB:         common.MakeDocElementID("", string(rootID)),
		Relationship: common.TypeRelationshipDescribe,
	})
	if !inv.OS.Empty() {
		osID := common.ElementID("OperatingSystem-" + spdxSafe(inv.OS.ID+"-"+inv.OS.VersionID))
		osPkg := &spdx.Package{
			PackageName: inv.OS.ID, PackageSPDXIdentifier: osID, PackageVersion: inv.OS.VersionID,
			PackageDownloadLocation: "NOASSERTION", PrimaryPackagePurpose: "OPERATING_SYSTEM",
			PackageLicenseConcluded: "NOASSERTION", PackageLicenseDeclared: "NOASSERTION", PackageCopyrightText: "NOASSERTION",
			PackageDescription: inv.OS.PrettyName,
		}
		if cpe := OSCPE(inv.OS); cpe != "" {
			osPkg.PackageExternalReferences = []*spdx.PackageExternalReference{{Category: common.CategorySecurity, RefType: common.TypeSecurityCPE23Type, Locator: cpe}}
		}
		doc.Packages = append(doc.Packages, osPkg)
		doc.Relationships = append(doc.Relationships, contains(rootID, osID))
	}
	sources := map[string]common.ElementID{}
	for i := range inv.Packages {
		p := &inv.Packages[i]
		id := common.ElementID("Package-" + spdxSafe(p.Type+"-"+p.Name) + "-" + shortHash(ComponentRef(i, p)+p.Path))
		sp := &spdx.Package{
			PackageName:             qualifiedName(p),
			PackageSPDXIdentifier:   id,
			PackageVersion:          p.Version,
			PackageDownloadLocation: "NOASSERTION",
			PackageLicenseConcluded: "NOASSERTION",
			PackageLicenseDeclared:  spdxLicense(p.Licenses),
			PackageCopyrightText:    "NOASSERTION",
			PackageSourceInfo:       "layer " + p.Layer + " path /" + p.Path,
			PrimaryPackagePurpose:   "LIBRARY",
		}
		if p.PURL != "" {
			sp.PackageExternalReferences = append(sp.PackageExternalReferences, &spdx.PackageExternalReference{
				Category: common.CategoryPackageManager, RefType: "purl", Locator: p.PURL,
			})
		}
		if cpe := PackageCPE(p); cpe != "" {
			sp.PackageExternalReferences = append(sp.PackageExternalReferences, &spdx.PackageExternalReference{
				Category: common.CategorySecurity, RefType: common.TypeSecurityCPE23Type, Locator: cpe,
			})
		}
		doc.Packages = append(doc.Packages, sp)
		doc.Relationships = append(doc.Relationships, contains(rootID, id))
		if src := SourcePURL(p); src != "" {
			srcID, ok := sources[src]
			if !ok {
				srcID = common.ElementID("Source-" + spdxSafe(p.SourceName) + "-" + shortHash(src))
				sources[src] = srcID
				doc.Packages = append(doc.Packages, &spdx.Package{
					PackageName: p.SourceName, PackageSPDXIdentifier: srcID, PackageVersion: sourceVersion(p),
					PackageDownloadLocation: "NOASSERTION", PrimaryPackagePurpose: "SOURCE",
					PackageLicenseConcluded: "NOASSERTION", PackageLicenseDeclared: "NOASSERTION", PackageCopyrightText: "NOASSERTION",
					PackageExternalReferences: []*spdx.PackageExternalReference{{
						Category: common.CategoryPackageManager, RefType: "purl", Locator: src,
					}},
				})
			}
			doc.Relationships = append(doc.Relationships, &spdx.Relationship{
				RefA: common.MakeDocElementID("", string(id)), RefB: common.MakeDocElementID("", string(srcID)),
				Relationship: common.TypeRelationshipGeneratedFrom,
			})
		}
	}
	return doc
}

// contains relates a package to one it contains.
func contains(a, b common.ElementID) *spdx.Relationship {
	return &spdx.Relationship{
		RefA: common.MakeDocElementID("", string(a)), RefB: common.MakeDocElementID("", string(b)),
		Relationship: common.TypeRelationshipContains,
	}
}

// WriteSPDX writes an SPDX 2.3 document as JSON.
func WriteSPDX(w io.Writer, doc *spdx.Document) error {
	return spdxjson.Write(doc, w, spdxjson.Indent("  "))
}

func qualifiedName(p *Package) string {
	if p.Namespace != "" {
		return p.Namespace + ":" + p.Name
	}
	return p.Name
}

func spdxLicense(ls []string) string {
	if len(ls) == 1 {
		if l, ok := normalizeLicense(ls[0]); ok {
			return l
		}
	}
	return "NOASSERTION"
}

// spdxSafe keeps what SPDX allows in an element ID.
func spdxSafe(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:6])
}
