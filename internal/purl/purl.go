// Package purl reads and writes package URLs in the canonical form the
// purl specification gives for each type socle uses: packageurl-go does
// the syntax, this package the per-type rules (case, normalisation,
// namespaces required or prohibited) and drops empty or placeholder
// qualifiers.
package purl

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/package-url/packageurl-go"
)

// rule is what a type's definition says of its namespace and name.
type rule struct {
	namespace      string // required, prohibited or optional
	lowerNamespace bool
	lowerName      bool
	lowerVersion   bool
	// pypi: underscores in names become dashes.
	dashName bool
}

var rules = map[string]rule{
	"apk":     {namespace: "required", lowerNamespace: true, lowerName: true},
	"deb":     {namespace: "required", lowerNamespace: true, lowerName: true},
	"rpm":     {namespace: "required", lowerNamespace: true},
	"golang":  {namespace: "required"},
	"maven":   {namespace: "required"},
	"npm":     {namespace: "optional"},
	"pypi":    {namespace: "prohibited", lowerName: true, dashName: true},
	"gem":     {namespace: "prohibited"},
	"cargo":   {namespace: "prohibited"},
	"nuget":   {namespace: "prohibited"},
	"oci":     {namespace: "prohibited", lowerName: true, lowerVersion: true},
	"docker":  {namespace: "optional"},
	"generic": {namespace: "optional"},
}

var (
	validType = regexp.MustCompile(`^[A-Za-z.+-][A-Za-z0-9.+-]*$`)
	validKey  = regexp.MustCompile(`^[a-z.\-_][a-z0-9.\-_]*$`)
)

// placeholders are qualifier values that say nothing: they are dropped.
var placeholders = map[string]bool{"": true, "unknown": true, "none": true, "null": true, "noassertion": true}

// Normalize applies the type's rules to u: case, name normalisation,
// qualifier keys lower-cased and sorted, empty and placeholder values
// dropped. It fails when the type requires or prohibits a namespace
// and u does not follow.
func Normalize(u packageurl.PackageURL) (packageurl.PackageURL, error) {
	if !validType.MatchString(u.Type) {
		return u, fmt.Errorf("package URL type %q: letters, digits, '.', '+' and '-', not starting with a digit", u.Type)
	}
	u.Type = strings.ToLower(u.Type)
	r, known := rules[u.Type]
	if known {
		switch {
		case r.namespace == "required" && u.Namespace == "":
			return u, fmt.Errorf("pkg:%s needs a namespace", u.Type)
		case r.namespace == "prohibited" && u.Namespace != "":
			return u, fmt.Errorf("pkg:%s takes no namespace (got %q)", u.Type, u.Namespace)
		}
		if r.lowerNamespace {
			u.Namespace = strings.ToLower(u.Namespace)
		}
		if r.lowerName {
			u.Name = strings.ToLower(u.Name)
		}
		if r.dashName {
			u.Name = strings.ReplaceAll(u.Name, "_", "-")
		}
		if r.lowerVersion {
			u.Version = strings.ToLower(u.Version)
		}
	}
	if u.Name == "" {
		return u, fmt.Errorf("pkg:%s has no name", u.Type)
	}
	var qs packageurl.Qualifiers
	for _, q := range u.Qualifiers {
		if !validKey.MatchString(q.Key) {
			return u, fmt.Errorf("qualifier key %q: lower-case letters, digits, '.', '-' and '_'", q.Key)
		}
		if placeholders[strings.ToLower(strings.TrimSpace(q.Value))] {
			continue
		}
		qs = append(qs, q)
	}
	sort.Slice(qs, func(i, j int) bool { return qs[i].Key < qs[j].Key })
	u.Qualifiers = qs
	return u, nil
}

// Parse reads a package URL and normalises it.
func Parse(s string) (packageurl.PackageURL, error) {
	// packageurl-go lower-cases qualifier keys. The specification's
	// required tests refuse keys that start with a capital (Platform,
	// Arch) and accept, lower-cased, other mixed-case ones
	// (repositorY_url): socle does both.
	if _, q, ok := strings.Cut(strings.SplitN(s, "#", 2)[0], "?"); ok {
		for _, kv := range strings.Split(q, "&") {
			if kv != "" && kv[0] >= 'A' && kv[0] <= 'Z' {
				k, _, _ := strings.Cut(kv, "=")
				return packageurl.PackageURL{}, fmt.Errorf("qualifier key %q is not lower case", k)
			}
		}
	}
	u, err := packageurl.FromString(s)
	if err != nil {
		return u, err
	}
	return Normalize(u)
}

// Canonical is the canonical string of a package URL.
func Canonical(s string) (string, error) {
	u, err := Parse(s)
	if err != nil {
		return "", err
	}
	return u.ToString(), nil
}

// Build makes the canonical package URL of the given parts.
func Build(typ, namespace, name, version string, qualifiers map[string]string, subpath string) (string, error) {
	var qs packageurl.Qualifiers
	for k, v := range qualifiers {
		qs = append(qs, packageurl.Qualifier{Key: k, Value: v})
	}
	u, err := Normalize(*packageurl.NewPackageURL(typ, namespace, name, version, qs, subpath))
	if err != nil {
		return "", err
	}
	return u.ToString(), nil
}
