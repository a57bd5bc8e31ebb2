package vuln

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// csafDoc is the part of a CSAF 2.0 document a VEX reading needs.
type csafDoc struct {
	Document struct {
		Category    string `json:"category"`
		CSAFVersion string `json:"csaf_version"`
		Tracking    struct {
			ID                 string `json:"id"`
			CurrentReleaseDate string `json:"current_release_date"`
		} `json:"tracking"`
	} `json:"document"`
	ProductTree struct {
		Branches         []csafBranch       `json:"branches"`
		FullProductNames []csafProduct      `json:"full_product_names"`
		Relationships    []csafRelationship `json:"relationships"`
	} `json:"product_tree"`
	Vulnerabilities []struct {
		CVE string `json:"cve"`
		IDs []struct {
			Text string `json:"text"`
		} `json:"ids"`
		ProductStatus struct {
			KnownNotAffected []string `json:"known_not_affected"`
			Fixed            []string `json:"fixed"`
			FirstFixed       []string `json:"first_fixed"`
		} `json:"product_status"`
		Flags []struct {
			Label      string   `json:"label"`
			ProductIDs []string `json:"product_ids"`
		} `json:"flags"`
		Threats []struct {
			Category   string   `json:"category"`
			Details    string   `json:"details"`
			ProductIDs []string `json:"product_ids"`
		} `json:"threats"`
	} `json:"vulnerabilities"`
}

type csafBranch struct {
	Branches []csafBranch `json:"branches"`
	Product  *csafProduct `json:"product"`
}

type csafProduct struct {
	ProductID string `json:"product_id"`
	Helper    struct {
		PURL string `json:"purl"`
		CPE  string `json:"cpe"`
	} `json:"product_identification_helper"`
}

type csafRelationship struct {
	ProductReference string      `json:"product_reference"`
	FullProductName  csafProduct `json:"full_product_name"`
}

// isCSAF tells a CSAF document by its keys.
func isCSAF(keys map[string]bool) bool {
	return keys["document"] && (keys["product_tree"] || keys["vulnerabilities"])
}

// maxCSAFDepth bounds the product tree's nesting.
const maxCSAFDepth = 32

// ParseCSAF reads a CSAF 2.0 document (csaf_vex, or an advisory with
// product statuses) and adds its known_not_affected and fixed statuses
// as statements. A product is matched through its identification
// helper: a purl or a CPE. A relationship's product (a component of a
// platform) is matched through its component. Products with no helper
// name nothing socle can match and are skipped; Skipped counts them.
func (v *VEX) ParseCSAF(data []byte) (skipped int, err error) {
	var doc csafDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return 0, fmt.Errorf("parsing CSAF: %w", err)
	}
	if !strings.HasPrefix(doc.Document.CSAFVersion, "2.") {
		return 0, fmt.Errorf("not a CSAF 2.x document (csaf_version %q)", doc.Document.CSAFVersion)
	}
	ids := map[string]string{} // product_id -> purl or CPE
	var walk func(bs []csafBranch, depth int) error
	walk = func(bs []csafBranch, depth int) error {
		if depth > maxCSAFDepth {
			return errors.New("CSAF product tree nested too deep")
		}
		for _, b := range bs {
			if b.Product != nil {
				addCSAFProduct(ids, *b.Product)
			}
			if err := walk(b.Branches, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(doc.ProductTree.Branches, 0); err != nil {
		return 0, err
	}
	for _, p := range doc.ProductTree.FullProductNames {
		addCSAFProduct(ids, p)
	}
	for _, r := range doc.ProductTree.Relationships {
		if id, ok := ids[r.ProductReference]; ok && r.FullProductName.ProductID != "" {
			ids[r.FullProductName.ProductID] = id
		}
	}
	at := parseVEXTime(doc.Document.Tracking.CurrentReleaseDate)
	for _, vu := range doc.Vulnerabilities {
		names := []string{}
		if vu.CVE != "" {
			names = append(names, vu.CVE)
		}
		for _, id := range vu.IDs {
			if id.Text != "" {
				names = append(names, id.Text)
			}
		}
		if len(names) == 0 {
			continue
		}
		why := map[string]string{}
		for _, f := range vu.Flags {
			for _, p := range f.ProductIDs {
				why[p] = f.Label
			}
		}
		for _, t := range vu.Threats {
			if t.Category != "impact" {
				continue
			}
			for _, p := range t.ProductIDs {
				if why[p] == "" {
					why[p] = t.Details
				}
			}
		}
		for _, group := range []struct {
			status   string
			products []string
		}{
			{VEXNotAffected, vu.ProductStatus.KnownNotAffected},
			{VEXFixed, append(append([]string{}, vu.ProductStatus.Fixed...), vu.ProductStatus.FirstFixed...)},
		} {
			for _, pid := range group.products {
				id, ok := ids[pid]
				if !ok {
					skipped++
					continue
				}
				v.statements = append(v.statements, vexStatement{
					vulns: names, products: []vexProduct{{id: id}}, status: group.status,
					justification: why[pid], at: at, order: len(v.statements),
				})
			}
		}
	}
	return skipped, nil
}

func addCSAFProduct(ids map[string]string, p csafProduct) {
	if p.ProductID == "" {
		return
	}
	switch {
	case p.Helper.PURL != "":
		ids[p.ProductID] = p.Helper.PURL
	case p.Helper.CPE != "":
		ids[p.ProductID] = p.Helper.CPE
	}
}

// VEX formats.
const (
	FormatOpenVEX = "openvex"
	FormatCSAF    = "csaf"
)

// ParseVEXDocument reads an OpenVEX or a CSAF document and returns its
// format.
func (v *VEX) ParseVEXDocument(data []byte) (string, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return "", fmt.Errorf("parsing VEX: %w", err)
	}
	if _, ok := keys["document"]; ok {
		_, err := v.ParseCSAF(data)
		return FormatCSAF, err
	}
	return FormatOpenVEX, v.ParseOpenVEX(data)
}
