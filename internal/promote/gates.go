package promote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/policy"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
)

// Gate names.
const (
	GatePath            = "previous-environment"
	GateSoak            = "soak"
	GateSignature       = "signature"
	GateVulnerabilities = "vulnerabilities"
	GateSBOM            = "sbom-attestation"
	GateApprovals       = "approvals"
	GatePolicy          = "policy"
)

// Evaluate runs the gates of environment e (at index idx) for ref. The
// approval gate is pending until enough approvers have approved rec.
func (p *Promoter) Evaluate(ctx context.Context, e config.Environment, idx int, ref name.Digest, rec store.Promotion) ([]Gate, error) {
	g := e.Gates
	var out []Gate
	add := func(gate string, ok bool, format string, args ...any) {
		out = append(out, Gate{Gate: gate, Passed: ok, Detail: fmt.Sprintf(format, args...)})
	}
	digest := ref.DigestStr()
	// The path: a digest enters an environment from the one before it.
	if idx > 0 {
		prev := p.Envs[idx-1].Name
		entered, err := p.enteredAt(ctx, prev, digest)
		if err != nil {
			return nil, err
		}
		if entered.IsZero() {
			add(GatePath, false, "%s has never been promoted to %s", oci.ShortDigest(digest), prev)
		} else {
			add(GatePath, true, "in %s since %s", prev, entered.Format(time.RFC3339))
		}
		if g.Soak.Duration > 0 {
			age := p.now().Sub(entered)
			switch {
			case entered.IsZero():
				add(GateSoak, false, "not in %s, so no soak time", prev)
			case age < g.Soak.Duration:
				add(GateSoak, false, "%s in %s, %s required", round(age), prev, g.Soak.Duration)
			default:
				add(GateSoak, true, "%s in %s (at least %s)", round(age), prev, g.Soak.Duration)
			}
		}
	}
	if len(g.SignedBy) > 0 {
		keys, err := p.verifiers(g.SignedBy)
		if err != nil {
			return nil, err
		}
		key, err := sign.VerifySignature(ctx, ref, keys, p.Remote...)
		switch {
		case errors.Is(err, sign.ErrNoSignature):
			add(GateSignature, false, "%v", err)
		case err != nil:
			return nil, err
		default:
			add(GateSignature, true, "signed, verified with %s", key)
		}
	}
	var findings []store.Finding
	needFindings := g.MaxSeverity != "" || g.Policy != "" || len(g.Policies) > 0
	if needFindings {
		if p.Ensure != nil {
			if err := p.Ensure(ctx, ref); err != nil {
				return nil, fmt.Errorf("indexing %s for the gates: %w", ref, err)
			}
		}
		fs, err := p.Store.ImageFindings(ctx, digest)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			if !f.Withdrawn {
				findings = append(findings, f)
			}
		}
	}
	if g.MaxSeverity != "" {
		limit := vuln.SeverityRank(strings.ToUpper(g.MaxSeverity))
		cutoff := p.now().Add(-g.FixOlderThan.Duration)
		var bad []string
		for _, f := range findings {
			if f.FixedVersion == "" || vuln.SeverityRank(f.Severity) < limit {
				continue
			}
			if g.FixOlderThan.Duration > 0 && (f.Published.IsZero() || f.Published.After(cutoff)) {
				continue
			}
			bad = append(bad, fmt.Sprintf("%s %s (%s %s, fixed in %s)", f.AdvisoryID, f.Severity, f.Package.Name, f.Package.Version, f.FixedVersion))
		}
		older := ""
		if g.FixOlderThan.Duration > 0 {
			older = fmt.Sprintf(" whose fix is older than %s", g.FixOlderThan.Duration)
		}
		if len(bad) > 0 {
			add(GateVulnerabilities, false, "%d fixable findings of severity %s or higher%s: %s", len(bad), strings.ToLower(g.MaxSeverity), older, summarize(bad, 5))
		} else {
			add(GateVulnerabilities, true, "no fixable finding of severity %s or higher%s (%d open findings)", strings.ToLower(g.MaxSeverity), older, len(findings))
		}
	}
	if g.SBOMAttestation {
		files := g.AttestationKeys
		if len(files) == 0 {
			files = g.SignedBy
		}
		keys, err := p.verifiers(files)
		if err != nil {
			return nil, err
		}
		sts, err := sign.VerifyAttestations(ctx, ref, keys, sign.PredicateCycloneDX, p.Remote...)
		if err != nil {
			return nil, err
		}
		if len(sts) == 0 {
			add(GateSBOM, false, "no CycloneDX attestation verified with %s", strings.Join(files, ", "))
		} else {
			add(GateSBOM, true, "CycloneDX attestation verified with %s", sts[0].Key)
		}
	}
	pols := g.Policies
	if g.Policy != "" {
		pols = append([]string{g.Policy}, pols...)
	}
	if len(pols) > 0 {
		doc, err := p.Document(ctx, e, ref, rec, findings)
		if err != nil {
			return nil, err
		}
		var denies []string
		for _, file := range pols {
			if !strings.HasPrefix(file, policy.BuiltinPrefix) {
				file = p.path(file)
			}
			pol, err := policy.Load(ctx, file)
			if err != nil {
				return nil, err
			}
			deny, err := pol.Deny(ctx, doc)
			if err != nil {
				return nil, err
			}
			for _, d := range deny {
				denies = append(denies, filepath.Base(file)+": "+d)
			}
		}
		if len(denies) > 0 {
			add(GatePolicy, false, "denied: %s", strings.Join(denies, "; "))
		} else {
			add(GatePolicy, true, "%s: no deny", strings.Join(pols, ", "))
		}
	}
	if g.Approvals > 0 {
		var approvers []string
		if rec.ID != 0 {
			as, err := p.Store.Approvals(ctx, rec.ID)
			if err != nil {
				return nil, err
			}
			for _, a := range as {
				approvers = append(approvers, a.Approver)
			}
		}
		gate := Gate{Gate: GateApprovals, Passed: len(approvers) >= g.Approvals, Detail: approvalDetail(approvers, g.Approvals)}
		gate.Pending = !gate.Passed
		out = append(out, gate)
	}
	return out, nil
}

// enteredAt is when digest was first promoted to env (zero if never).
func (p *Promoter) enteredAt(ctx context.Context, env, digest string) (time.Time, error) {
	recs, err := p.Store.ListPromotions(ctx, store.PromotionQuery{Environment: env, Digest: digest, States: []string{store.PromotionDone}, Limit: 1000})
	if err != nil {
		return time.Time{}, err
	}
	var at time.Time
	for _, r := range recs {
		if at.IsZero() || r.UpdatedAt.Before(at) {
			at = r.UpdatedAt
		}
	}
	return at, nil
}

func (p *Promoter) verifiers(files []string) ([]*sign.Verifier, error) {
	var out []*sign.Verifier
	for _, f := range files {
		v, err := sign.LoadVerifierFile(p.path(f))
		if err != nil {
			return nil, fmt.Errorf("gate key: %w", err)
		}
		out = append(out, v)
	}
	return out, nil
}

// Document is the input of a Rego gate: the image's config, SBOM
// (CycloneDX), findings, lineage and promotion history, with the
// environment it is going to.
func (p *Promoter) Document(ctx context.Context, e config.Environment, ref name.Digest, rec store.Promotion, findings []store.Finding) (map[string]any, error) {
	digest := ref.DigestStr()
	doc := map[string]any{
		"environment": e.Name,
		"from":        rec.From,
		"actor":       map[string]any{"name": rec.By, "role": rec.Role},
		"image":       map[string]any{"repository": ref.Context().Name(), "digest": digest},
	}
	// The config, from the registry.
	img, err := remote.Image(ref, p.opts(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	var cfg any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, err
	}
	doc["image"].(map[string]any)["config"] = cfg
	// The SBOM, from the store.
	if stored, err := p.Store.Image(ctx, digest); err == nil {
		inv, err := scan.DecodeInventory(stored.Inventory)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := sbom.WriteCycloneDX(&b, sbom.CycloneDX(inv, sbom.ImageName{Repository: stored.Repository})); err != nil {
			return nil, err
		}
		var bom any
		if err := json.Unmarshal(b.Bytes(), &bom); err != nil {
			return nil, err
		}
		doc["sbom"] = bom
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	fs := make([]map[string]any, 0, len(findings))
	for _, f := range findings {
		fs = append(fs, map[string]any{
			"id": f.AdvisoryID, "aliases": f.Aliases, "severity": f.Severity, "score": f.Score,
			"package": f.Package.Name, "version": f.Package.Version, "type": f.Package.Type, "fixed_version": f.FixedVersion,
			"layer": f.Package.Layer, "published": f.Published.Format(time.RFC3339), "opened": f.OpenedAt.Format(time.RFC3339),
		})
	}
	doc["findings"] = fs
	if ls, ok := p.Store.(catalog.LineageStore); ok {
		links, err := catalog.Lineage(ctx, ls, digest)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		doc["lineage"] = toAny(links)
	}
	hist, err := p.Store.ListPromotions(ctx, store.PromotionQuery{Digest: digest, Limit: 1000})
	if err != nil {
		return nil, err
	}
	hs := make([]map[string]any, 0, len(hist))
	for _, h := range hist {
		hs = append(hs, map[string]any{"environment": h.Environment, "state": h.State, "by": h.By, "kind": h.Kind,
			"at": h.UpdatedAt.Format(time.RFC3339), "repository": h.Target})
	}
	doc["history"] = hs
	return toAny(doc).(map[string]any), nil
}

// toAny round-trips v through JSON, so that Rego sees plain values.
func toAny(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func round(d time.Duration) time.Duration { return d.Round(time.Second) }

func summarize(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, ", ")
	}
	return strings.Join(list[:n], ", ") + fmt.Sprintf(" and %d more", len(list)-n)
}
