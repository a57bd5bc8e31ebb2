package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/socle-dev/socle/internal/oci"
	"gopkg.in/yaml.v3"
)

// File is socle.yaml.
type File struct {
	// Server configures socle serve.
	Server Server `yaml:"server"`
	// Registry points socle at an existing registry instead of its
	// embedded one.
	Registry Registry `yaml:"registry"`
	// Watch lists repositories in any registry whose tags socle follows
	// by polling.
	Watch []Watch `yaml:"watch"`
	// Feeds lists advisory sources synced on a schedule.
	Feeds []Feed `yaml:"feeds"`
	// Images is the catalog: the images socle builds, each on its parent.
	Images []Image `yaml:"images"`
	// Environments are the promotion path, in order, with their gates.
	Environments []Environment `yaml:"environments"`
	// Signing is the key of promotion attestations.
	Signing Signing `yaml:"signing"`
	// Remediation configures where digest bumps are committed.
	Remediation Remediation `yaml:"remediation"`
	// Webhooks receive events.
	Webhooks []Webhook `yaml:"webhooks"`
	// Auth configures dashboard sign-in and sessions.
	Auth Auth `yaml:"auth"`
	// Audit configures the signed checkpoints of the audit log.
	Audit AuditCheckpoints `yaml:"audit"`
	// Clusters are the Kubernetes clusters socle watches and admits to.
	Clusters []Cluster `yaml:"clusters"`
	// Admission configures the admission webhooks.
	Admission Admission `yaml:"admission"`

	// path is where the file was read from; positions maps a field path
	// ("watch[1].tags") to its place in the file.
	path      string
	positions map[string]Pos
	// digest is the SHA-256 of the bytes read, for the audit log.
	digest string
}

// Digest is the SHA-256 of the file's bytes ("sha256:…"), empty for a
// configuration that was not read from a file.
func (f *File) Digest() string { return f.digest }

// Server configures the API, dashboard and embedded registry listeners.
type Server struct {
	// Addr is where the API and dashboard listen (default 127.0.0.1:8080).
	Addr string `yaml:"addr"`
	// RegistryAddr is where the embedded registry listens (default
	// 127.0.0.1:5050). Beyond loopback it requires tokens.
	RegistryAddr string `yaml:"registry_addr"`
	// Workers is how many background jobs run at once (default 2).
	Workers int `yaml:"workers"`
	// TLS enables HTTPS on both listeners.
	TLS TLS `yaml:"tls"`
}

// TLS names a certificate, or asks for a self-signed one.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// SelfSigned generates a certificate for localhost and 127.0.0.1,
	// kept in the data directory.
	SelfSigned bool `yaml:"self_signed"`
}

// Registry is an external OCI registry (Harbor, distribution, any), or
// the rules of the embedded one.
type Registry struct {
	// URL is the registry host, with an optional path prefix
	// (harbor.example/project). Credentials come from the docker config.
	URL string `yaml:"url"`
	// InsecureUnsafe allows plain HTTP to it.
	InsecureUnsafe bool `yaml:"insecure_unsafe"`
	// ImmutableTags are the embedded registry's immutable tags: a tag
	// matching a rule never points at another digest once pushed. The
	// default makes version tags (1.2.3, v1.2.3, 1.2.3-suffix) immutable;
	// an empty list [] makes none.
	ImmutableTags *[]TagRule `yaml:"immutable_tags"`
	// MaxBlobSize bounds one blob pushed to the embedded registry, in
	// bytes (default 16 GiB).
	MaxBlobSize int64 `yaml:"max_blob_size"`
	// UploadTimeout drops an upload idle this long (default 1h).
	UploadTimeout Duration `yaml:"upload_timeout"`
	// GCGrace keeps blobs younger than this from garbage collection
	// (default 1h): the blobs of a push under way.
	GCGrace Duration `yaml:"gc_grace"`
}

// TagRule names tags by a pattern (path.Match) in repositories matched
// by a pattern where "*" stays within a segment and "**" spans any.
type TagRule struct {
	Repositories string `yaml:"repositories"`
	Tags         string `yaml:"tags"`
}

// Watch follows the tags of one repository.
type Watch struct {
	// Repository is a full repository name: host/path.
	Repository string `yaml:"repository"`
	// Tags are glob patterns (path.Match syntax); empty means all tags.
	Tags []string `yaml:"tags"`
	// Interval between polls (default 5m).
	Interval Duration `yaml:"interval"`
}

// Feed is one advisory source.
type Feed struct {
	// Name labels the records in the store.
	Name string `yaml:"name"`
	// URL is a local path, a file:// URL, an http(s):// URL of an OSV
	// zip export or JSON, or a git repository (git+https://..., or a
	// path ending in .git) of OSV records.
	URL string `yaml:"url"`
	// Interval between syncs (default 1h).
	Interval Duration `yaml:"interval"`
}

// Duration is a time.Duration written as "5m" or "1h30m".
type Duration struct{ time.Duration }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (use 30s, 5m, 1h)", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// Pos is a place in the file.
type Pos struct{ Line, Column int }

// Error is a problem with one field of the file.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

// Errors is every problem found in a file.
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

const maxConfig = 8 << 20

// Load reads and validates a file.
func Load(p string) (*File, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return Parse(p, data)
}

// Parse reads and validates the content of a file named name.
func Parse(name string, data []byte) (*File, error) {
	if len(data) > maxConfig {
		return nil, &Error{File: name, Msg: fmt.Sprintf("larger than %d bytes", maxConfig)}
	}
	sum := sha256.Sum256(data)
	f := &File{path: name, digest: "sha256:" + hex.EncodeToString(sum[:])}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{File: name, Line: yamlErrorLine(err), Msg: cleanYAMLError(err)}
	}
	if len(root.Content) == 0 {
		f.positions = map[string]Pos{}
		return f, f.Validate()
	}
	if err := rejectAliases(&root, 0); err != nil {
		return nil, &Error{File: name, Line: err.Line, Msg: err.Msg}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		return nil, &Error{File: name, Line: yamlErrorLine(err), Msg: cleanYAMLError(err)}
	}
	f.positions = map[string]Pos{}
	collectPositions(root.Content[0], "", f.positions, 0)
	return f, f.Validate()
}

type posError struct {
	Line int
	Msg  string
}

// rejectAliases refuses anchors and aliases: they make a file hard to
// read and are the vector of "billion laughs" documents.
func rejectAliases(n *yaml.Node, depth int) *posError {
	if depth > 100 {
		return &posError{n.Line, "nested too deeply"}
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return &posError{n.Line, "YAML anchors and aliases are not accepted"}
	}
	for _, c := range n.Content {
		if err := rejectAliases(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func collectPositions(n *yaml.Node, prefix string, out map[string]Pos, depth int) {
	if depth > 100 {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			out[p] = Pos{k.Line, k.Column}
			collectPositions(v, p, out, depth+1)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			out[p] = Pos{c.Line, c.Column}
			collectPositions(c, p, out, depth+1)
		}
	}
}

// Position returns where a field is, or the closest enclosing one.
func (f *File) Position(field string) Pos {
	for p := field; p != ""; {
		if pos, ok := f.positions[p]; ok {
			return pos
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return Pos{}
}

// Path is where the file was read from.
func (f *File) Path() string { return f.path }

// Errorf makes an Error naming field and its line, for checks made
// outside this package (the catalog's).
func (f *File) Errorf(field, format string, args ...any) *Error {
	return f.errorf(field, format, args...)
}

// errorf makes an Error for field.
func (f *File) errorf(field, format string, args ...any) *Error {
	return &Error{File: f.path, Line: f.Position(field).Line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks the values the decoder cannot.
func (f *File) Validate() error {
	var errs Errors
	check := func(field, addr string) {
		if addr == "" {
			return
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, f.errorf(field, "%q is not host:port", addr))
		}
	}
	check("server.addr", f.Server.Addr)
	check("server.registry_addr", f.Server.RegistryAddr)
	if f.Server.Workers < 0 {
		errs = append(errs, f.errorf("server.workers", "must not be negative"))
	}
	if (f.Server.TLS.Cert == "") != (f.Server.TLS.Key == "") {
		errs = append(errs, f.errorf("server.tls", "cert and key go together"))
	}
	if f.Server.TLS.SelfSigned && f.Server.TLS.Cert != "" {
		errs = append(errs, f.errorf("server.tls.self_signed", "either a certificate or self_signed, not both"))
	}
	if f.Registry.ImmutableTags != nil {
		for i, r := range *f.Registry.ImmutableTags {
			field := fmt.Sprintf("registry.immutable_tags[%d]", i)
			if err := oci.ValidRepositoryPattern(r.Repositories); err != nil {
				errs = append(errs, f.errorf(field+".repositories", "%v", err))
			}
			if _, err := path.Match(r.Tags, ""); err != nil || r.Tags == "" {
				errs = append(errs, f.errorf(field+".tags", "bad pattern %q", r.Tags))
			}
		}
	}
	if f.Registry.MaxBlobSize < 0 {
		errs = append(errs, f.errorf("registry.max_blob_size", "must not be negative"))
	}
	for i, w := range f.Watch {
		field := fmt.Sprintf("watch[%d]", i)
		if !strings.Contains(w.Repository, "/") {
			errs = append(errs, f.errorf(field+".repository", "%q is not a full repository name (host/path)", w.Repository))
		}
		for j, t := range w.Tags {
			if _, err := path.Match(t, ""); err != nil {
				errs = append(errs, f.errorf(fmt.Sprintf("%s.tags[%d]", field, j), "bad pattern %q: %v", t, err))
			}
		}
		if w.Interval.Duration < 0 || (w.Interval.Duration > 0 && w.Interval.Duration < time.Second) {
			errs = append(errs, f.errorf(field+".interval", "must be at least 1s"))
		}
	}
	names := map[string]bool{}
	for i, fd := range f.Feeds {
		field := fmt.Sprintf("feeds[%d]", i)
		if fd.Name == "" {
			errs = append(errs, f.errorf(field+".name", "required"))
		} else if names[fd.Name] {
			errs = append(errs, f.errorf(field+".name", "%q is used twice", fd.Name))
		}
		names[fd.Name] = true
		if fd.URL == "" {
			errs = append(errs, f.errorf(field+".url", "required"))
		}
		if fd.Interval.Duration < 0 || (fd.Interval.Duration > 0 && fd.Interval.Duration < time.Minute) {
			errs = append(errs, f.errorf(field+".interval", "must be at least 1m"))
		}
	}
	errs = append(errs, f.validateEnvironments()...)
	errs = append(errs, f.validateClusters()...)
	errs = append(errs, f.validateAuth([]string{"viewer", "developer", "approver", "admin"})...)
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// yamlErrorLine pulls "line N" out of a yaml.v3 error.
func yamlErrorLine(err error) int {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	if i := strings.Index(msg, "line "); i >= 0 {
		rest := msg[i+5:]
		j := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		if j > 0 {
			n, _ := strconv.Atoi(rest[:j])
			return n
		}
	}
	return 0
}

func cleanYAMLError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	if i := strings.Index(msg, ": "); i > 0 && strings.HasPrefix(msg, "line ") {
		msg = msg[i+2:]
	}
	return strings.ReplaceAll(msg, " in type config.", " in ")
}

// WatchInterval returns the poll interval of w.
func (w Watch) WatchInterval() time.Duration {
	if w.Interval.Duration > 0 {
		return w.Interval.Duration
	}
	return 5 * time.Minute
}

// Matches reports whether a tag is followed.
func (w Watch) Matches(tag string) bool {
	if len(w.Tags) == 0 {
		return true
	}
	for _, p := range w.Tags {
		if ok, _ := path.Match(p, tag); ok {
			return true
		}
	}
	return false
}

// SyncInterval returns the sync interval of a feed.
func (fd Feed) SyncInterval() time.Duration {
	if fd.Interval.Duration > 0 {
		return fd.Interval.Duration
	}
	return time.Hour
}
