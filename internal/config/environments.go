package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
)

// Environment is one stage of the promotion path. Environments are
// ordered: each promotion comes from the one before.
type Environment struct {
	Name string `yaml:"name"`
	// Tag is the purpose tag moved to the promoted digest (default: the
	// environment's name).
	Tag string `yaml:"tag"`
	// Repository is a template of the repository holding this
	// environment's tag, over .Repository (host/path of the source),
	// .Registry (its host) and .Path; default "{{.Repository}}". A
	// different repository gets a copy by digest (blobs mounted).
	Repository string `yaml:"repository"`
	// Roles may promote here (default developer, approver, admin).
	Roles []string `yaml:"roles"`
	Gates Gates    `yaml:"gates"`
	// Admission is how the admission webhooks treat the namespaces
	// mapped to this environment.
	Admission EnvironmentAdmission `yaml:"admission"`
}

// Gates are the conditions a digest must meet to enter an environment.
type Gates struct {
	// SignedBy lists public key files; one must verify a signature.
	SignedBy []string `yaml:"signed_by"`
	// Soak is how long the digest must have been in the previous
	// environment.
	Soak Duration `yaml:"soak"`
	// MaxSeverity refuses open findings of this severity or higher that
	// have a fix (low, medium, high, critical)...
	MaxSeverity string `yaml:"max_severity"`
	// ...published more than FixOlderThan ago (default: any age).
	FixOlderThan Duration `yaml:"fix_older_than"`
	// SBOMAttestation requires a CycloneDX attestation signed by one of
	// SignedBy (or AttestationKeys).
	SBOMAttestation bool `yaml:"sbom_attestation"`
	// Provenance requires a SLSA v1 provenance attestation signed by one
	// of SignedBy (or AttestationKeys), as socle build attaches.
	Provenance bool `yaml:"provenance"`
	// AttestationKeys verify attestations when they differ from SignedBy.
	AttestationKeys []string `yaml:"attestation_keys"`
	// Approvals is how many distinct approvers must approve.
	Approvals int `yaml:"approvals"`
	// Policy is a Rego file, or a built-in policy (builtin:nonroot,
	// builtin:source-label, builtin:no-critical-fixable,
	// builtin:known-base); any deny message blocks. Policies lists more.
	Policy   string   `yaml:"policy"`
	Policies []string `yaml:"policies"`
	// Checks are socle check rule sets (image, baseline, restricted,
	// hardening) run on the image, or conftest-style Rego policy files or
	// directories (package main) run on the gate's document; any failure
	// blocks.
	Checks []string `yaml:"checks"`
}

// Signing configures the key socle signs promotion attestations with.
type Signing struct {
	// Key is a cosign private key file; its password is COSIGN_PASSWORD.
	Key string `yaml:"key"`
}

// Dir is the directory relative paths of socle.yaml are read from.
func (f *File) Dir() string {
	if f.path == "" || f.path == "(defaults)" {
		return "."
	}
	return filepath.Dir(f.path)
}

// Resolve returns a path of socle.yaml, made absolute against its
// directory.
func (f *File) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(f.Dir(), p)
}

var severities = map[string]bool{"low": true, "medium": true, "high": true, "critical": true}

// EnvironmentTag returns the purpose tag of e.
func (e Environment) EnvironmentTag() string {
	if e.Tag != "" {
		return e.Tag
	}
	return e.Name
}

func (f *File) validateEnvironments() Errors {
	var errs Errors
	seen := map[string]bool{}
	for i, e := range f.Environments {
		field := fmt.Sprintf("environments[%d]", i)
		switch {
		case e.Name == "":
			errs = append(errs, f.errorf(field+".name", "required"))
		case seen[e.Name]:
			errs = append(errs, f.errorf(field+".name", "%q is used twice", e.Name))
		case strings.ContainsAny(e.Name, " /:@"):
			errs = append(errs, f.errorf(field+".name", "%q: no spaces, slashes, colons or @", e.Name))
		}
		seen[e.Name] = true
		if e.Repository != "" {
			if _, err := template.New("").Option("missingkey=error").Parse(e.Repository); err != nil {
				errs = append(errs, f.errorf(field+".repository", "%v", err))
			}
		}
		for j, r := range e.Roles {
			switch r {
			case "viewer", "developer", "approver", "admin":
			default:
				errs = append(errs, f.errorf(fmt.Sprintf("%s.roles[%d]", field, j), "unknown role %q", r))
			}
		}
		g := e.Gates
		if g.MaxSeverity != "" && !severities[strings.ToLower(g.MaxSeverity)] {
			errs = append(errs, f.errorf(field+".gates.max_severity", "%q: want low, medium, high or critical", g.MaxSeverity))
		}
		if g.Approvals < 0 {
			errs = append(errs, f.errorf(field+".gates.approvals", "must not be negative"))
		}
		if g.Soak.Duration < 0 || g.FixOlderThan.Duration < 0 {
			errs = append(errs, f.errorf(field+".gates", "durations must not be negative"))
		}
		if g.Soak.Duration > 0 && i == 0 {
			errs = append(errs, f.errorf(field+".gates.soak", "the first environment has no previous one to soak in"))
		}
		if g.SBOMAttestation && len(g.SignedBy) == 0 && len(g.AttestationKeys) == 0 {
			errs = append(errs, f.errorf(field+".gates.sbom_attestation", "needs signed_by or attestation_keys to verify it"))
		}
		if g.Provenance && len(g.SignedBy) == 0 && len(g.AttestationKeys) == 0 {
			errs = append(errs, f.errorf(field+".gates.provenance", "needs signed_by or attestation_keys to verify it"))
		}
	}
	for i, w := range f.Webhooks {
		field := fmt.Sprintf("webhooks[%d]", i)
		if !strings.HasPrefix(w.URL, "https://") && !strings.HasPrefix(w.URL, "http://") {
			errs = append(errs, f.errorf(field+".url", "want an http(s) URL"))
		}
		for j, ev := range w.Events {
			if !slices.Contains(WebhookEvents, ev) {
				errs = append(errs, f.errorf(fmt.Sprintf("%s.events[%d]", field, j), "unknown event %q (%s)", ev, strings.Join(WebhookEvents, ", ")))
			}
		}
	}
	for i, g := range f.Remediation.Git {
		if g.Repo == "" {
			errs = append(errs, f.errorf(fmt.Sprintf("remediation.git[%d].repo", i), "required"))
		}
	}
	if t := f.Remediation.Promote.Through; t != "" && !seen[t] {
		errs = append(errs, f.errorf("remediation.promote.through", "%q is not an environment", t))
	}
	return errs
}

// WebhookEvents are the events webhooks may ask for.
var WebhookEvents = []string{"findings.new", "findings.kev", "remediation.done", "remediation.awaiting_approval"}

// Remediation configures socle remediate.
type Remediation struct {
	// Git lists repositories whose digest pins are bumped.
	Git []GitRepo `yaml:"git"`
	// Auto makes socle serve remediate the catalog after each feed sync
	// that opened findings.
	Auto bool `yaml:"auto"`
	// Promote carries remediated digests through the environments.
	Promote RemediationPromote `yaml:"promote"`
}

// RemediationPromote says how far remediated digests are promoted
// unattended: every environment up to Through, through its gates; the
// next one gets a promotion request for its approvers.
type RemediationPromote struct {
	Through string `yaml:"through"`
}

// GitRepo is a repository socle commits digest bumps to.
type GitRepo struct {
	// Repo is a local path or a URL (cloned, then the branch is pushed).
	Repo   string   `yaml:"repo"`
	Branch string   `yaml:"branch"`
	Paths  []string `yaml:"paths"`
}

// Webhook receives events as JSON.
type Webhook struct {
	URL string `yaml:"url"`
	// Events: findings.new, findings.kev, remediation.done,
	// remediation.awaiting_approval (all when empty).
	Events []string `yaml:"events"`
	// SecretEnv names the environment variable holding the HMAC secret,
	// so that no secret sits in socle.yaml.
	SecretEnv string `yaml:"secret_env"`
}
