package apt

import (
	"bufio"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"strings"
)

// Package is one stanza of a Packages index.
type Package struct {
	Name          string
	Version       string
	Architecture  string
	Source        string
	SourceVersion string
	Priority      string
	Essential     bool
	MultiArch     string
	PreDepends    []Alternatives
	Depends       []Alternatives
	Provides      []Relation
	Filename      string
	Size          int64
	SHA256        string
	InstalledSize string
	// Fields keeps every field in order, for the dpkg status file.
	Fields []Field
	// Suite names where the stanza came from (the main or the security suite).
	Suite string
}

// Field is one field of a stanza.
type Field struct{ Name, Value string }

// Alternatives is "a | b": any one satisfies the dependency.
type Alternatives []Relation

// Relation is one package name with an optional version constraint.
type Relation struct {
	Name     string
	Arch     string // after ":" (any, native...)
	Op       string // <<, <=, =, >=, >> or empty
	Version  string
	Original string
}

const (
	maxStanza  = 1 << 20
	maxStanzas = 500_000
)

// ParsePackages reads a Packages index (uncompressed).
func ParsePackages(r io.Reader, suite string) ([]Package, error) {
	tp := textproto.NewReader(bufio.NewReaderSize(r, 1<<16))
	var out []Package
	for {
		fields, err := readStanza(tp)
		if err != nil {
			return nil, err
		}
		if fields == nil {
			return out, nil
		}
		if len(out) >= maxStanzas {
			return nil, fmt.Errorf("Packages index has more than %d stanzas", maxStanzas)
		}
		p, err := packageFromFields(fields)
		if err != nil {
			return nil, err
		}
		p.Suite = suite
		out = append(out, p)
	}
}

// readStanza reads the fields of one stanza, nil at the end.
func readStanza(tp *textproto.Reader) ([]Field, error) {
	var fields []Field
	size := 0
	for {
		line, err := tp.ReadLine()
		if err == io.EOF {
			if len(fields) == 0 {
				return nil, nil
			}
			return fields, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading Packages: %w", err)
		}
		size += len(line)
		if size > maxStanza {
			return nil, fmt.Errorf("Packages stanza larger than %d bytes", maxStanza)
		}
		if line == "" {
			if len(fields) == 0 {
				continue
			}
			return fields, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(fields) == 0 {
				return nil, fmt.Errorf("Packages: continuation line before any field: %q", line)
			}
			fields[len(fields)-1].Value += "\n" + line
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" {
			return nil, fmt.Errorf("Packages: malformed line %q", line)
		}
		fields = append(fields, Field{Name: k, Value: strings.TrimSpace(v)})
	}
}

func packageFromFields(fields []Field) (Package, error) {
	p := Package{Fields: fields}
	var err error
	for _, f := range fields {
		switch strings.ToLower(f.Name) {
		case "package":
			p.Name = f.Value
		case "version":
			p.Version = f.Value
		case "architecture":
			p.Architecture = f.Value
		case "source":
			p.Source, p.SourceVersion = splitSource(f.Value)
		case "priority":
			p.Priority = f.Value
		case "essential":
			p.Essential = f.Value == "yes"
		case "multi-arch":
			p.MultiArch = f.Value
		case "pre-depends":
			if p.PreDepends, err = ParseRelations(f.Value); err != nil {
				return p, fmt.Errorf("%s: Pre-Depends: %w", p.Name, err)
			}
		case "depends":
			if p.Depends, err = ParseRelations(f.Value); err != nil {
				return p, fmt.Errorf("%s: Depends: %w", p.Name, err)
			}
		case "provides":
			alts, err := ParseRelations(f.Value)
			if err != nil {
				return p, fmt.Errorf("%s: Provides: %w", p.Name, err)
			}
			for _, a := range alts {
				p.Provides = append(p.Provides, a...)
			}
		case "filename":
			p.Filename = f.Value
		case "size":
			if p.Size, err = strconv.ParseInt(f.Value, 10, 64); err != nil || p.Size < 0 {
				return p, fmt.Errorf("%s: bad Size %q", p.Name, f.Value)
			}
		case "sha256":
			p.SHA256 = strings.ToLower(f.Value)
		case "installed-size":
			p.InstalledSize = f.Value
		}
	}
	if p.Name == "" || p.Version == "" {
		return p, fmt.Errorf("Packages: stanza without Package or Version")
	}
	if p.Filename != "" && (strings.Contains(p.Filename, "..") || strings.HasPrefix(p.Filename, "/")) {
		return p, fmt.Errorf("%s: unsafe Filename %q", p.Name, p.Filename)
	}
	return p, nil
}

func splitSource(s string) (name, version string) {
	name, rest, ok := strings.Cut(strings.TrimSpace(s), " ")
	if ok {
		version = strings.Trim(strings.TrimSpace(rest), "()")
	}
	return name, version
}

// ParseRelations parses a dependency field: "a (>= 1), b | c:any".
func ParseRelations(s string) ([]Alternatives, error) {
	var out []Alternatives
	for _, group := range strings.Split(s, ",") {
		group = strings.TrimSpace(group)
		if group == "" {
			continue
		}
		var alts Alternatives
		for _, rel := range strings.Split(group, "|") {
			r, err := parseRelation(strings.TrimSpace(rel))
			if err != nil {
				return nil, err
			}
			alts = append(alts, r)
		}
		out = append(out, alts)
	}
	return out, nil
}

func parseRelation(s string) (Relation, error) {
	r := Relation{Original: s}
	// Drop architecture qualifiers [amd64] and build profiles <!nocheck>.
	if i := strings.IndexAny(s, "[<"); i >= 0 && !strings.Contains(s[:i], "(") {
		s = strings.TrimSpace(s[:i])
	}
	name := s
	if i := strings.IndexByte(s, '('); i >= 0 {
		j := strings.IndexByte(s, ')')
		if j < i {
			return r, fmt.Errorf("bad relation %q", r.Original)
		}
		name = strings.TrimSpace(s[:i])
		c := strings.TrimSpace(s[i+1 : j])
		for _, op := range []string{"<<", "<=", ">=", ">>", "=", "<", ">"} {
			if v, ok := strings.CutPrefix(c, op); ok {
				r.Op, r.Version = op, strings.TrimSpace(v)
				break
			}
		}
		if r.Op == "" || r.Version == "" {
			return r, fmt.Errorf("bad version constraint in %q", r.Original)
		}
		switch r.Op { // obsolete spellings
		case "<":
			r.Op = "<="
		case ">":
			r.Op = ">="
		}
	}
	name, r.Arch, _ = strings.Cut(name, ":")
	if name == "" || strings.ContainsAny(name, " \t") {
		return r, fmt.Errorf("bad package name in %q", r.Original)
	}
	r.Name = name
	return r, nil
}

// Field returns the value of a field, or "".
func (p *Package) Field(name string) string {
	for _, f := range p.Fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}
