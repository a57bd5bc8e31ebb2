package vuln

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/facebookincubator/nvdtools/wfn"
	"github.com/package-url/packageurl-go"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/store"
)

// VEX holds the statements of OpenVEX documents.
type VEX struct {
	statements []vexStatement
}

type vexStatement struct {
	vulns         []string
	products      []vexProduct
	status        string
	justification string
	impact        string
	at            time.Time
	order         int
}

type vexProduct struct {
	id            string
	subcomponents []string
}

// OpenVEX statuses.
const (
	VEXNotAffected        = "not_affected"
	VEXAffected           = "affected"
	VEXFixed              = "fixed"
	VEXUnderInvestigation = "under_investigation"
)

type rawVEX struct {
	Context    string         `json:"@context"`
	Timestamp  string         `json:"timestamp"`
	Statements []rawStatement `json:"statements"`
}

type rawStatement struct {
	Vulnerability   json.RawMessage `json:"vulnerability"`
	Products        json.RawMessage `json:"products"`
	Subcomponents   json.RawMessage `json:"subcomponents"`
	Status          string          `json:"status"`
	Justification   string          `json:"justification"`
	ImpactStatement string          `json:"impact_statement"`
	Timestamp       string          `json:"timestamp"`
}

// ParseOpenVEX reads an OpenVEX document (v0.0.1 or v0.2.0) and adds its
// statements. Later documents and later statements win over earlier ones
// for the same vulnerability and product, as the specification says.
func (v *VEX) ParseOpenVEX(data []byte) error {
	var doc rawVEX
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("parsing OpenVEX: %w", err)
	}
	if !strings.Contains(doc.Context, "openvex") {
		return fmt.Errorf("not an OpenVEX document (@context %q)", doc.Context)
	}
	docTime := parseVEXTime(doc.Timestamp)
	for i, rs := range doc.Statements {
		st := vexStatement{
			status:        rs.Status,
			justification: rs.Justification,
			impact:        rs.ImpactStatement,
			at:            docTime,
			order:         len(v.statements),
		}
		if t := parseVEXTime(rs.Timestamp); !t.IsZero() {
			st.at = t
		}
		switch st.status {
		case VEXNotAffected, VEXAffected, VEXFixed, VEXUnderInvestigation:
		default:
			return fmt.Errorf("OpenVEX statement %d: unknown status %q", i, st.status)
		}
		var err error
		if st.vulns, err = parseVEXVulnerability(rs.Vulnerability); err != nil {
			return fmt.Errorf("OpenVEX statement %d: %w", i, err)
		}
		if st.products, err = parseVEXProducts(rs.Products); err != nil {
			return fmt.Errorf("OpenVEX statement %d: %w", i, err)
		}
		if len(rs.Subcomponents) > 0 {
			subs, err := parseVEXProducts(rs.Subcomponents)
			if err != nil {
				return fmt.Errorf("OpenVEX statement %d: subcomponents: %w", i, err)
			}
			for pi := range st.products {
				for _, s := range subs {
					st.products[pi].subcomponents = append(st.products[pi].subcomponents, s.id)
				}
			}
		}
		if len(st.products) == 0 {
			return fmt.Errorf("OpenVEX statement %d: no products", i)
		}
		v.statements = append(v.statements, st)
	}
	return nil
}

func parseVEXTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func parseVEXVulnerability(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 {
		return nil, errors.New("no vulnerability")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, errors.New("empty vulnerability")
		}
		return []string{s}, nil
	}
	var o struct {
		ID      string   `json:"@id"`
		Name    string   `json:"name"`
		Aliases []string `json:"aliases"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, fmt.Errorf("vulnerability: %w", err)
	}
	var out []string
	for _, x := range append([]string{o.Name, o.ID}, o.Aliases...) {
		if x != "" {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("vulnerability has no name")
	}
	return out, nil
}

func parseVEXProducts(raw json.RawMessage) ([]vexProduct, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("products: %w", err)
	}
	var out []vexProduct
	for _, it := range items {
		var s string
		if json.Unmarshal(it, &s) == nil {
			out = append(out, vexProduct{id: s})
			continue
		}
		var o struct {
			ID            string `json:"@id"`
			Subcomponents []struct {
				ID string `json:"@id"`
			} `json:"subcomponents"`
		}
		if err := json.Unmarshal(it, &o); err != nil {
			return nil, fmt.Errorf("product: %w", err)
		}
		p := vexProduct{id: o.ID}
		for _, sc := range o.Subcomponents {
			p.subcomponents = append(p.subcomponents, sc.ID)
		}
		out = append(out, p)
	}
	return out, nil
}

// Len is the number of statements loaded.
func (v *VEX) Len() int { return len(v.statements) }

// Apply splits findings of the image with digest into those kept and
// those a not_affected or fixed statement suppresses; a suppressed
// finding carries the status and justification.
func (v *VEX) Apply(digest string, fs []Finding) (kept, suppressed []Finding) {
	if v == nil || len(v.statements) == 0 {
		return fs, nil
	}
	for _, f := range fs {
		var best *vexStatement
		for i := range v.statements {
			st := &v.statements[i]
			if !st.names(f) || !st.covers(digest, &f.Package) {
				continue
			}
			if best == nil || st.at.After(best.at) || (st.at.Equal(best.at) && st.order > best.order) {
				best = st
			}
		}
		if best != nil && (best.status == VEXNotAffected || best.status == VEXFixed) {
			f.Suppressed = best.status
			if best.justification != "" {
				f.Suppressed += ": " + best.justification
			} else if best.impact != "" {
				f.Suppressed += ": " + best.impact
			}
			suppressed = append(suppressed, f)
			continue
		}
		kept = append(kept, f)
	}
	return kept, suppressed
}

func (st *vexStatement) names(f Finding) bool {
	for _, n := range st.vulns {
		if n == f.ID {
			return true
		}
		for _, a := range f.Aliases {
			if n == a {
				return true
			}
		}
		for _, a := range f.Advisories {
			if n == a {
				return true
			}
		}
	}
	return false
}

// covers reports whether a statement's products include the package
// inside the image digest.
func (st *vexStatement) covers(digest string, pkg *sbom.Package) bool {
	pkgPURL := pkg.PURL
	for _, p := range st.products {
		if strings.HasPrefix(p.id, "cpe:") {
			if cpeMatches(p.id, sbom.PackageCPE(pkg)) {
				return true
			}
			continue
		}
		if isImageProduct(p.id, digest) {
			if len(p.subcomponents) == 0 {
				return true
			}
			for _, s := range p.subcomponents {
				if purlMatches(s, pkgPURL) {
					return true
				}
			}
			continue
		}
		if purlMatches(p.id, pkgPURL) {
			return true
		}
	}
	return false
}

// isImageProduct reports whether id names the image with digest: an
// oci package URL whose version is the digest, or a reference pinned to it.
func isImageProduct(id, digest string) bool {
	if digest == "" {
		return false
	}
	if strings.HasPrefix(id, "pkg:oci/") {
		p, err := packageurl.FromString(id)
		if err != nil {
			return false
		}
		v, _ := url.PathUnescape(p.Version)
		return v == digest
	}
	return strings.HasSuffix(id, "@"+digest) || id == digest
}

// purlMatches compares a statement's package URL with a package's: same
// type, namespace and name, and the same version when the statement
// gives one. Qualifiers are ignored.
func purlMatches(stmt, pkg string) bool {
	if stmt == "" || pkg == "" {
		return false
	}
	a, err := packageurl.FromString(stmt)
	if err != nil {
		return false
	}
	b, err := packageurl.FromString(pkg)
	if err != nil {
		return false
	}
	if !strings.EqualFold(a.Type, b.Type) || !strings.EqualFold(a.Namespace, b.Namespace) || a.Name != b.Name {
		return false
	}
	return a.Version == "" || a.Version == b.Version
}

// cpeMatches compares a statement's CPE (2.2 URI or 2.3 string) with a
// package's: same part, vendor and product, and the same version unless
// the statement's is any.
func cpeMatches(stmt, pkg string) bool {
	if stmt == "" || pkg == "" {
		return false
	}
	a, err := wfn.Parse(stmt)
	if err != nil {
		return false
	}
	b, err := wfn.Parse(pkg)
	if err != nil {
		return false
	}
	if a.Part != b.Part || !strings.EqualFold(a.Vendor, b.Vendor) || !strings.EqualFold(a.Product, b.Product) {
		return false
	}
	return a.Version == wfn.Any || a.Version == "" || a.Version == b.Version
}

// VEXStore is what applying VEX to stored images reads and writes.
type VEXStore interface {
	Images(ctx context.Context, f store.ImageFilter) ([]store.ImageSummary, error)
	ImageFindings(ctx context.Context, digest string) ([]store.Finding, error)
	CloseFindings(ctx context.Context, digest string, keys []store.FindingKey, reason string, at time.Time) (int, error)
	AppendAudit(ctx context.Context, ev store.AuditEvent) (store.AuditEvent, error)
}

// VEXResult counts what applying VEX closed.
type VEXResult struct {
	Statements int `json:"statements"`
	Closed     int `json:"closed"`
	Images     int `json:"images"`
}

// ApplyStored closes, in every stored image, the open findings v
// declares not_affected or fixed, with the reason "vex: STATUS:
// JUSTIFICATION" (which a re-match does not undo), and records it in the
// audit log: by whom, which documents (by digest), what it closed.
func ApplyStored(ctx context.Context, st VEXStore, v *VEX, documents []string, by string, now time.Time) (VEXResult, error) {
	res := VEXResult{Statements: v.Len()}
	for offset := 0; ; offset += 1000 {
		imgs, err := st.Images(ctx, store.ImageFilter{Limit: 1000, Offset: offset})
		if err != nil {
			return res, err
		}
		for _, im := range imgs {
			n, err := applyToImage(ctx, st, v, im.Digest, now)
			if err != nil {
				return res, err
			}
			if n > 0 {
				res.Images++
				res.Closed += n
			}
		}
		if len(imgs) < 1000 {
			break
		}
	}
	details, _ := json.Marshal(map[string]any{"documents": documents, "statements": res.Statements, "closed": res.Closed, "images": res.Images})
	_, err := st.AppendAudit(ctx, store.AuditEvent{At: now.UTC(), Actor: by, Action: "vex.apply", Subject: "findings", Details: details})
	return res, err
}

func applyToImage(ctx context.Context, st VEXStore, v *VEX, digest string, now time.Time) (int, error) {
	rows, err := st.ImageFindings(ctx, digest)
	if err != nil {
		return 0, err
	}
	_, suppressed := v.Apply(digest, FromStore(rows))
	byReason := map[string][]store.FindingKey{}
	for _, f := range suppressed {
		for _, adv := range f.Advisories {
			byReason[f.Suppressed] = append(byReason[f.Suppressed], store.FindingKey{AdvisoryID: adv, Package: f.Package.Name})
		}
	}
	n := 0
	for reason, keys := range byReason {
		c, err := st.CloseFindings(ctx, digest, keys, store.CloseVEX+": "+reason, now)
		if err != nil {
			return n, err
		}
		n += c
	}
	return n, nil
}

// StoredVEXStore is what applying kept VEX documents reads and writes.
type StoredVEXStore interface {
	VEXStore
	PutVEXDocument(ctx context.Context, d store.VEXDocument) (bool, error)
	VEXDocuments(ctx context.Context) ([]store.VEXDocument, error)
}

// StoredVEX applies the kept VEX documents (those of socle vex apply,
// of db import and of feeds) to images as they are stored or
// re-matched, so that a statement made once holds for every later image.
// The parsed documents are cached until another one is kept.
type StoredVEX struct {
	st  StoredVEXStore
	now func() time.Time

	mu  sync.Mutex
	key string
	v   *VEX
}

// NewStoredVEX returns a StoredVEX over st.
func NewStoredVEX(st StoredVEXStore) *StoredVEX { return &StoredVEX{st: st, now: time.Now} }

// Keep validates documents and keeps them. It returns the digests of
// those it had not seen.
func (s *StoredVEX) Keep(ctx context.Context, docs [][]byte, names []string, by string) ([]string, error) {
	var added []string
	for i, d := range docs {
		format, err := (&VEX{}).ParseVEXDocument(d)
		if err != nil {
			return added, fmt.Errorf("document %d: %w", i+1, err)
		}
		name := ""
		if i < len(names) {
			name = names[i]
		}
		doc := store.VEXDocument{Digest: oci.SHA256(d), Name: name, Format: format, Data: d, AddedAt: s.now().UTC(), By: by}
		ok, err := s.st.PutVEXDocument(ctx, doc)
		if err != nil {
			return added, err
		}
		if ok {
			added = append(added, doc.Digest)
		}
	}
	return added, nil
}

// Load returns the statements of every kept document.
func (s *StoredVEX) Load(ctx context.Context) (*VEX, error) {
	docs, err := s.st.VEXDocuments(ctx)
	if err != nil {
		return nil, err
	}
	key := strconv.Itoa(len(docs))
	if len(docs) > 0 {
		key += docs[len(docs)-1].Digest
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v != nil && s.key == key {
		return s.v, nil
	}
	v := &VEX{}
	for _, d := range docs {
		if _, err := v.ParseVEXDocument(d.Data); err != nil {
			return nil, fmt.Errorf("kept VEX document %s: %w", d.Digest, err)
		}
	}
	s.v, s.key = v, key
	return v, nil
}

// Apply closes, in the images with digests (every image when nil), the
// open findings the kept documents declare not_affected or fixed. What
// it closed is audited as vex.apply by socle.
func (s *StoredVEX) Apply(ctx context.Context, digests []string) (VEXResult, error) {
	v, err := s.Load(ctx)
	if err != nil || v.Len() == 0 {
		return VEXResult{}, err
	}
	if digests == nil {
		return ApplyStored(ctx, s.st, v, []string{"kept documents"}, "socle", s.now())
	}
	res := VEXResult{Statements: v.Len()}
	seen := map[string]bool{}
	for _, d := range digests {
		if seen[d] {
			continue
		}
		seen[d] = true
		n, err := applyToImage(ctx, s.st, v, d, s.now())
		if err != nil {
			return res, err
		}
		if n > 0 {
			res.Images++
			res.Closed += n
		}
	}
	if res.Closed == 0 {
		return res, nil
	}
	details, _ := json.Marshal(map[string]any{"documents": []string{"kept documents"}, "closed": res.Closed, "images": res.Images})
	_, err = s.st.AppendAudit(ctx, store.AuditEvent{At: s.now().UTC(), Actor: "socle", Action: "vex.apply", Subject: "findings", Details: details})
	return res, err
}

// Hook is Apply in the form scan.WithVEX takes.
func (s *StoredVEX) Hook(ctx context.Context, digests []string) error {
	_, err := s.Apply(ctx, digests)
	return err
}

// KeepAndApply keeps documents (OpenVEX or CSAF) and applies every kept
// document to every stored image: socle vex apply. It is audited as
// vex.apply by whom, with the documents' names.
func (s *StoredVEX) KeepAndApply(ctx context.Context, docs [][]byte, names []string, by string) (VEXResult, error) {
	if _, err := s.Keep(ctx, docs, names, by); err != nil {
		return VEXResult{}, err
	}
	v, err := s.Load(ctx)
	if err != nil {
		return VEXResult{}, err
	}
	return ApplyStored(ctx, s.st, v, names, by, s.now())
}
