package vuln

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	osvpb "github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/types/known/timestamppb"
	"gopkg.in/yaml.v3"
)

// SecDB is an Alpine security database document: either a whole branch
// (distroversion, reponame, packages[].pkg) as alpine-secdb publishes it,
// or one package (name, secfixes, distroversion) as vuln-list keeps it.
type SecDB struct {
	DistroVersion string       `yaml:"distroversion" json:"distroversion"`
	RepoName      string       `yaml:"reponame" json:"reponame"`
	Packages      []secdbEntry `yaml:"packages" json:"packages"`
	Name          string       `yaml:"name" json:"name"`
	Secfixes      secfixes     `yaml:"secfixes" json:"secfixes"`
}

type secdbEntry struct {
	Pkg struct {
		Name     string   `yaml:"name" json:"name"`
		Secfixes secfixes `yaml:"secfixes" json:"secfixes"`
	} `yaml:"pkg" json:"pkg"`
}

// secfixes maps a fixed version to the identifiers it fixes.
type secfixes map[string][]string

// ParseSecDB parses a secdb document in YAML or JSON.
func ParseSecDB(data []byte, isJSON bool) (*SecDB, error) {
	if len(data) > maxRecordSize*4 {
		return nil, fmt.Errorf("secdb document of %d bytes is too large", len(data))
	}
	var d SecDB
	var err error
	if isJSON {
		err = json.Unmarshal(data, &d)
	} else {
		err = yaml.Unmarshal(data, &d)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing Alpine secdb: %w", err)
	}
	if !strings.HasPrefix(d.DistroVersion, "v") || len(d.DistroVersion) < 2 {
		return nil, fmt.Errorf("Alpine secdb: distroversion %q is not of the form v3.10", d.DistroVersion)
	}
	if d.Name == "" && len(d.Packages) == 0 {
		return nil, fmt.Errorf("Alpine secdb %s: neither packages nor a package name", d.DistroVersion)
	}
	return &d, nil
}

// isSecDB tells a secdb document from an OSV record by its keys.
func isSecDB(keys map[string]bool) bool {
	return keys["secfixes"] || (keys["packages"] && keys["distroversion"])
}

// SecDBToOSV converts secdb documents of one or more branches into OSV
// records, one per branch and identifier, named ALPINE-<branch>-<id>:
// each fixed version becomes a range introduced at 0 and fixed there.
// Fixes listed under version "0" (never affected in Alpine) are dropped.
// modified dates the records, since secdb carries no dates.
func SecDBToOSV(docs []*SecDB, modified time.Time) []*osvpb.Vulnerability {
	type key struct{ branch, id string }
	type pkgFix struct{ pkg, fixed string }
	fixes := map[key][]pkgFix{}
	add := func(branch, pkg string, sf secfixes) {
		for fixed, ids := range sf {
			if fixed == "0" || fixed == "" {
				continue
			}
			for _, entry := range ids {
				for _, id := range strings.Fields(entry) {
					if !validID.MatchString(id) {
						continue
					}
					k := key{branch, id}
					fixes[k] = append(fixes[k], pkgFix{pkg, fixed})
				}
			}
		}
	}
	for _, d := range docs {
		if d.Name != "" {
			add(d.DistroVersion, d.Name, d.Secfixes)
		}
		for _, p := range d.Packages {
			if p.Pkg.Name != "" {
				add(d.DistroVersion, p.Pkg.Name, p.Pkg.Secfixes)
			}
		}
	}
	keys := make([]key, 0, len(fixes))
	for k := range fixes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].branch != keys[j].branch {
			return keys[i].branch < keys[j].branch
		}
		return keys[i].id < keys[j].id
	})
	out := make([]*osvpb.Vulnerability, 0, len(keys))
	for _, k := range keys {
		v := &osvpb.Vulnerability{
			SchemaVersion: "1.6.0",
			Id:            "ALPINE-" + k.branch + "-" + k.id,
			Aliases:       []string{k.id},
			Modified:      timestamppb.New(modified),
		}
		byPkg := map[string][]string{}
		var pkgs []string
		for _, pf := range fixes[k] {
			if _, ok := byPkg[pf.pkg]; !ok {
				pkgs = append(pkgs, pf.pkg)
			}
			byPkg[pf.pkg] = append(byPkg[pf.pkg], pf.fixed)
		}
		sort.Strings(pkgs)
		v.Summary = fmt.Sprintf("%s in %s (Alpine %s secdb)", k.id, strings.Join(pkgs, ", "), k.branch)
		for _, p := range pkgs {
			fixedVersions := byPkg[p]
			sort.Slice(fixedVersions, func(i, j int) bool { return lessVersion("Alpine", fixedVersions[i], fixedVersions[j]) })
			events := []*osvpb.Event{{Introduced: "0"}}
			// The lowest fix is the one that matters: every version below
			// it is affected, every version from it on is fixed.
			events = append(events, &osvpb.Event{Fixed: fixedVersions[0]})
			v.Affected = append(v.Affected, &osvpb.Affected{
				Package: &osvpb.Package{Ecosystem: "Alpine:" + k.branch, Name: p},
				Ranges:  []*osvpb.Range{{Type: osvpb.Range_ECOSYSTEM, Events: events}},
			})
		}
		out = append(out, v)
	}
	return out
}
