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
	"github.com/socle-dev/socle/internal/check"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/policy"
	"github.com/socle-dev/socle/internal/provenance"
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
	GateProvenance      = "provenance"
	GateApprovals       = "approvals"
	GatePolicy          = "policy"
	GateChecks          = "checks"
)

// Evaluate runs the gates of environment e (at index idx) for ref, in
// order: path and soak, signature, vulnerabilities, SBOM attestation,
// provenance, policies, approvals. The approval gate is pending until enough
// approvers have approved rec.
func (p *Promoter) Evaluate(ctx context.Context, e config.Environment, idx int, ref name.Digest, rec store.Promotion) ([]Gate, error) {
	v := &evaluation{p: p, env: e, idx: idx, ref: ref, digest: ref.DigestStr(), rec: rec}
	for _, gate := range []func(context.Context) error{
		v.path, v.signature, v.loadFindings, v.vulnerabilities, v.sbomAttestation, v.provenance, v.policies, v.checks, v.approvals,
	} {
		if err := gate(ctx); err != nil {
			return nil, err
		}
	}
	return v.out, nil
}

// evaluation is one run of an environment's gates; each method runs one
// gate when the environment has it, and adds its outcome.
type evaluation struct {
	p      *Promoter
	env    config.Environment
	idx    int
	ref    name.Digest
	digest string
	rec    store.Promotion
	// findings are the image's open findings of advisories not
	// withdrawn, loaded when a gate reads them.
	findings []store.Finding
	out      []Gate
}

func (v *evaluation) add(gate string, ok bool, format string, args ...any) {
	v.out = append(v.out, Gate{Gate: gate, Passed: ok, Detail: fmt.Sprintf(format, args...)})
}

// path: a digest enters an environment from the one before it, and
// stays there the soak time.
func (v *evaluation) path(ctx context.Context) error {
	if v.idx == 0 {
		return nil
	}
	prev := v.p.Envs[v.idx-1].Name
	entered, err := v.p.enteredAt(ctx, prev, v.digest)
	if err != nil {
		return err
	}
	if entered.IsZero() {
		v.add(GatePath, false, "%s has never been promoted to %s", oci.ShortDigest(v.digest), prev)
	} else {
		v.add(GatePath, true, "in %s since %s", prev, entered.Format(time.RFC3339))
	}
	soak := v.env.Gates.Soak.Duration
	if soak <= 0 {
		return nil
	}
	age := v.p.now().Sub(entered)
	switch {
	case entered.IsZero():
		v.add(GateSoak, false, "not in %s, so no soak time", prev)
	case age < soak:
		v.add(GateSoak, false, "%s in %s, %s required", round(age), prev, soak)
	default:
		v.add(GateSoak, true, "%s in %s (at least %s)", round(age), prev, soak)
	}
	return nil
}

// signature: a cosign signature by one of signed_by's keys.
func (v *evaluation) signature(ctx context.Context) error {
	if len(v.env.Gates.SignedBy) == 0 {
		return nil
	}
	keys, err := v.p.verifiers(v.env.Gates.SignedBy)
	if err != nil {
		return err
	}
	key, err := sign.VerifySignature(ctx, v.ref, keys, v.p.Remote...)
	switch {
	case errors.Is(err, sign.ErrNoSignature):
		v.add(GateSignature, false, "%v", err)
	case err != nil:
		return err
	default:
		v.add(GateSignature, true, "signed, verified with %s", key)
	}
	return nil
}

// ensureIndexed indexes the image when the store does not know it.
func (v *evaluation) ensureIndexed(ctx context.Context) error {
	if v.p.Ensure == nil {
		return nil
	}
	if err := v.p.Ensure(ctx, v.ref); err != nil {
		return fmt.Errorf("indexing %s for the gates: %w", v.ref, err)
	}
	return nil
}

// loadFindings reads the image's findings when a gate needs them,
// indexing the image first when the store does not know it.
func (v *evaluation) loadFindings(ctx context.Context) error {
	g := v.env.Gates
	if g.MaxSeverity == "" && g.Policy == "" && len(g.Policies) == 0 {
		return nil
	}
	if err := v.ensureIndexed(ctx); err != nil {
		return err
	}
	fs, err := v.p.Store.ImageFindings(ctx, v.digest)
	if err != nil {
		return err
	}
	for _, f := range fs {
		if !f.Withdrawn {
			v.findings = append(v.findings, f)
		}
	}
	return nil
}

// vulnerabilities: no fixable finding at or above max_severity (whose
// fix is older than fix_older_than, when set).
func (v *evaluation) vulnerabilities(context.Context) error {
	g := v.env.Gates
	if g.MaxSeverity == "" {
		return nil
	}
	limit := vuln.SeverityRank(strings.ToUpper(g.MaxSeverity))
	cutoff := v.p.now().Add(-g.FixOlderThan.Duration)
	var bad []string
	for _, f := range v.findings {
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
		v.add(GateVulnerabilities, false, "%d fixable findings of severity %s or higher%s: %s", len(bad), strings.ToLower(g.MaxSeverity), older, summarize(bad, 5))
	} else {
		v.add(GateVulnerabilities, true, "no fixable finding of severity %s or higher%s (%d open findings)", strings.ToLower(g.MaxSeverity), older, len(v.findings))
	}
	return nil
}

// attestationKeys are the keys attestations must verify with:
// attestation_keys, else signed_by.
func (v *evaluation) attestationKeys() ([]string, []*sign.Verifier, error) {
	files := v.env.Gates.AttestationKeys
	if len(files) == 0 {
		files = v.env.Gates.SignedBy
	}
	keys, err := v.p.verifiers(files)
	return files, keys, err
}

// provenance: a SLSA v1 provenance signed by one of the keys.
func (v *evaluation) provenance(ctx context.Context) error {
	if !v.env.Gates.Provenance {
		return nil
	}
	files, keys, err := v.attestationKeys()
	if err != nil {
		return err
	}
	pred, key, err := provenance.Verify(ctx, v.ref, keys, v.p.Remote...)
	switch {
	case errors.Is(err, provenance.ErrNone):
		v.add(GateProvenance, false, "no SLSA provenance verified with %s", strings.Join(files, ", "))
	case err != nil:
		return err
	default:
		v.add(GateProvenance, true, "SLSA provenance (%s, by %s) verified with %s", pred.BuildDefinition.BuildType, pred.RunDetails.Builder.ID, key)
	}
	return nil
}

// sbomAttestation: a CycloneDX or SPDX attestation signed by one of the
// keys.
func (v *evaluation) sbomAttestation(ctx context.Context) error {
	g := v.env.Gates
	if !g.SBOMAttestation {
		return nil
	}
	files, keys, err := v.attestationKeys()
	if err != nil {
		return err
	}
	for _, pt := range []struct{ typ, name string }{{sign.PredicateCycloneDX, "CycloneDX"}, {sign.PredicateSPDX, "SPDX"}} {
		sts, err := sign.VerifyAttestations(ctx, v.ref, keys, pt.typ, v.p.Remote...)
		if err != nil {
			return err
		}
		if len(sts) > 0 {
			v.add(GateSBOM, true, "%s attestation verified with %s", pt.name, sts[0].Key)
			return nil
		}
	}
	v.add(GateSBOM, false, "no CycloneDX or SPDX attestation verified with %s", strings.Join(files, ", "))
	return nil
}

// policies: no deny from the Rego policies (files or built-ins).
func (v *evaluation) policies(ctx context.Context) error {
	g := v.env.Gates
	pols := g.Policies
	if g.Policy != "" {
		pols = append([]string{g.Policy}, pols...)
	}
	if len(pols) == 0 {
		return nil
	}
	doc, err := v.p.Document(ctx, v.env, v.ref, v.rec, v.findings)
	if err != nil {
		return err
	}
	var denies []string
	for _, file := range pols {
		if !strings.HasPrefix(file, policy.BuiltinPrefix) {
			file = v.p.path(file)
		}
		pol, err := policy.Load(ctx, file)
		if err != nil {
			return err
		}
		deny, err := pol.Deny(ctx, doc)
		if err != nil {
			return err
		}
		for _, d := range deny {
			denies = append(denies, filepath.Base(file)+": "+d)
		}
	}
	if len(denies) > 0 {
		v.add(GatePolicy, false, "denied: %s", strings.Join(denies, "; "))
	} else {
		v.add(GatePolicy, true, "%s: no deny", strings.Join(pols, ", "))
	}
	return nil
}

// approvals: enough distinct approvers; pending until then.
func (v *evaluation) approvals(ctx context.Context) error {
	want := v.env.Gates.Approvals
	if want <= 0 {
		return nil
	}
	var approvers []string
	if v.rec.ID != 0 {
		as, err := v.p.Store.Approvals(ctx, v.rec.ID)
		if err != nil {
			return err
		}
		for _, a := range as {
			approvers = append(approvers, a.Approver)
		}
	}
	gate := Gate{Gate: GateApprovals, Passed: len(approvers) >= want, Detail: approvalDetail(approvers, want)}
	gate.Pending = !gate.Passed
	v.out = append(v.out, gate)
	return nil
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
		inv, err := scan.StoredInventory(ctx, p.Store, stored)
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

// checks: socle check's image rules of the named sets (the image's kept
// check when it ran the current rules, else a check run now and kept),
// and conftest-style policies on the gate's document.
func (v *evaluation) checks(ctx context.Context) error {
	var sets, files []string
	for _, c := range v.env.Gates.Checks {
		if _, err := check.RulesOf([]string{c}); err == nil {
			sets = append(sets, c)
		} else {
			files = append(files, v.p.path(c))
		}
	}
	if len(sets)+len(files) == 0 {
		return nil
	}
	var fails []string
	if len(sets) > 0 {
		res, err := v.imageCheck(ctx)
		if err != nil {
			return err
		}
		rules, _ := check.RulesOf(sets)
		for _, f := range res.Findings {
			if rules[f.Rule] {
				fails = append(fails, f.Rule+" "+f.Object+": "+f.Message)
			}
		}
	}
	if len(files) > 0 {
		doc, err := v.p.Document(ctx, v.env, v.ref, v.rec, v.findings)
		if err != nil {
			return err
		}
		pols, err := check.LoadSandboxedPolicies(files)
		if err != nil {
			return err
		}
		rs, err := pols.Evaluate(ctx, "promotion", doc)
		if err != nil {
			return err
		}
		for _, r := range rs {
			for _, m := range r.Failures {
				fails = append(fails, r.Namespace+": "+m.Msg)
			}
		}
	}
	if len(fails) > 0 {
		v.add(GateChecks, false, "%d failed: %s", len(fails), summarize(fails, 5))
	} else {
		v.add(GateChecks, true, "%s: no failure", strings.Join(v.env.Gates.Checks, ", "))
	}
	return nil
}

// imageCheck returns the image's kept check of the current rules, or
// indexes the image, runs one on it in its registry and keeps it.
func (v *evaluation) imageCheck(ctx context.Context) (*check.ImageResult, error) {
	if kept, err := v.p.Store.ImageCheck(ctx, v.digest); err == nil && kept.RulesVersion == check.RulesVersion() {
		return check.DecodeResult(kept)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	// Checks are kept by indexed image.
	if err := v.ensureIndexed(ctx); err != nil {
		return nil, err
	}
	img, err := remote.Image(v.ref, v.p.Remote...)
	if err != nil {
		return nil, fmt.Errorf("reading %s to check it: %w", v.ref, err)
	}
	return check.Keeper{St: v.p.Store, Now: v.p.now}.Run(ctx, v.ref.Context().Name(), v.digest, img)
}
