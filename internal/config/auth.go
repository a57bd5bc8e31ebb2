package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Auth configures how people sign in to the dashboard and how long they
// stay signed in.
type Auth struct {
	// PublicURL is where people reach socle (https://socle.example.org):
	// cookies are Secure when it is https, and the OIDC callback is under
	// it.
	PublicURL string `yaml:"public_url"`
	// TrustedProxies are the addresses (CIDRs) whose X-Forwarded-Proto
	// header socle believes.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Session bounds dashboard sessions.
	Session SessionPolicy `yaml:"session"`
	// OIDC signs people in with the organisation's identity provider.
	OIDC *OIDC `yaml:"oidc"`
}

// SessionPolicy is how long a dashboard session lasts.
type SessionPolicy struct {
	// Idle ends a session unused this long (default 2h).
	Idle Duration `yaml:"idle"`
	// Absolute ends any session this long after sign-in (default 12h).
	Absolute Duration `yaml:"absolute"`
}

// OIDC is an OpenID Connect identity provider.
type OIDC struct {
	// Issuer is the provider's issuer URL (discovery is read from it).
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"client_id"`
	// ClientSecretEnv names the environment variable holding the client
	// secret, so that no secret sits in socle.yaml.
	ClientSecretEnv string `yaml:"client_secret_env"`
	// Scopes asked for (default openid, profile, email).
	Scopes []string `yaml:"scopes"`
	// UserClaim names the user (default preferred_username, then email,
	// then sub).
	UserClaim string `yaml:"user_claim"`
	// GroupsClaim is the claim whose values (a string or a list) map to
	// roles (default groups).
	GroupsClaim string `yaml:"groups_claim"`
	// Roles maps a group to a socle role; a person gets the highest role
	// of their groups, and none of them refuses the sign-in.
	Roles map[string]string `yaml:"roles"`
}

// AuditCheckpoints are signed statements of the audit log's state,
// written outside the database.
type AuditCheckpoints struct {
	// Interval between checkpoints socle serve writes (default 1h; 0
	// keeps the default, a negative value writes none).
	Interval Duration `yaml:"checkpoint_interval"`
	// Sink is where checkpoints go: a directory (default
	// DATA_DIR/audit-checkpoints), an http(s):// URL (each is POSTed), or
	// oci://registry/repository (each is pushed as an artifact).
	Sink string `yaml:"sink"`
}

// IdleOrDefault and AbsoluteOrDefault are the session bounds.
func (s SessionPolicy) IdleOrDefault() time.Duration {
	if s.Idle.Duration > 0 {
		return s.Idle.Duration
	}
	return 2 * time.Hour
}

func (s SessionPolicy) AbsoluteOrDefault() time.Duration {
	if s.Absolute.Duration > 0 {
		return s.Absolute.Duration
	}
	return 12 * time.Hour
}

func (f *File) validateAuth(roles []string) Errors {
	var errs Errors
	a := f.Auth
	if a.PublicURL != "" {
		u, err := url.Parse(a.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, f.errorf("auth.public_url", "%q: want http(s)://host[:port]", a.PublicURL))
		}
	}
	for i, p := range a.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil {
			errs = append(errs, f.errorf(fmt.Sprintf("auth.trusted_proxies[%d]", i), "%q is not a CIDR (10.0.0.0/8)", p))
		}
	}
	if a.Session.Idle.Duration < 0 || a.Session.Absolute.Duration < 0 {
		errs = append(errs, f.errorf("auth.session", "durations must not be negative"))
	}
	if o := a.OIDC; o != nil {
		if u, err := url.Parse(o.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			errs = append(errs, f.errorf("auth.oidc.issuer", "%q: want the provider's https URL", o.Issuer))
		}
		if o.ClientID == "" {
			errs = append(errs, f.errorf("auth.oidc.client_id", "required"))
		}
		if len(o.Roles) == 0 {
			errs = append(errs, f.errorf("auth.oidc.roles", "map at least one group to a role"))
		}
		for g, r := range o.Roles {
			if !slices.Contains(roles, r) {
				errs = append(errs, f.errorf("auth.oidc.roles."+g, "unknown role %q (%s)", r, strings.Join(roles, ", ")))
			}
		}
	}
	if s := f.Audit.Sink; s != "" && !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "oci://") && !strings.HasPrefix(s, "/") {
		errs = append(errs, f.errorf("audit.sink", "%q: an absolute directory, an http(s):// URL or oci://registry/repository", s))
	}
	return errs
}
