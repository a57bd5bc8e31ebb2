package assemble

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/osv-scalibr/semantic"

	"github.com/socle-dev/socle/internal/apt"
)

// Resolved is one package chosen for an image.
type Resolved struct {
	*apt.Package
	archive *apt.Archive
}

// Resolution is the package set of an assembled image.
type Resolution struct {
	Packages []Resolved
	// Releases are the Release files the packages were chosen from.
	Releases []*apt.Release
}

// Versions returns name → version of the resolution.
func (r *Resolution) Versions() map[string]string {
	out := make(map[string]string, len(r.Packages))
	for _, p := range r.Packages {
		out[p.Name] = p.Version
	}
	return out
}

func (a *Assembler) archive(suite, mirror string) (*apt.Archive, error) {
	if mirror == "" {
		m, ok := apt.MirrorFor(a.sources, suite)
		if !ok {
			return nil, fmt.Errorf("no apt source serves %s: set the mirror in socle.yaml", suite)
		}
		mirror = m
	}
	kr, err := apt.ReadKeyring(a.keyring)
	if err != nil {
		return nil, err
	}
	return &apt.Archive{Mirror: strings.TrimSuffix(mirror, "/"), Suite: suite, Keyring: kr, Cache: a.cache}, nil
}

func (a *Assembler) index(ctx context.Context, suite, mirror, arch string) (*suiteIndex, error) {
	key := suite + "|" + mirror + "|" + arch
	if ix, ok := a.indexes[key]; ok {
		return ix, nil
	}
	ar, err := a.archive(suite, mirror)
	if err != nil {
		return nil, err
	}
	ar.Arch = arch
	rel, pkgs, err := ar.Index(ctx)
	if err != nil {
		return nil, err
	}
	ix := &suiteIndex{archive: ar, release: rel, pkgs: pkgs}
	a.indexes[key] = ix
	a.log.Info("archive index read", "mirror", ar.Mirror, "suite", suite, "packages", len(pkgs))
	return ix, nil
}

// Refresh drops cached indexes, so the next Resolve reads the archive again.
func (a *Assembler) Refresh() { a.indexes = map[string]*suiteIndex{} }

// Resolve chooses the packages of spec and their dependencies from the
// archive: the newest version across the suite and its security suite.
func (a *Assembler) Resolve(ctx context.Context, spec Spec) (*Resolution, error) {
	if spec.Suite == "" || len(spec.Packages) == 0 {
		return nil, errors.New("assemble: a suite and at least one package are required")
	}
	arch := spec.Arch
	if arch == "" {
		arch = "amd64"
	}
	main, err := a.index(ctx, spec.Suite, spec.Mirror, arch)
	if err != nil {
		return nil, err
	}
	ixs := []*suiteIndex{main}
	if spec.Security {
		sec, err := a.index(ctx, spec.Suite+"-security", spec.SecurityMirror, arch)
		if err != nil {
			return nil, err
		}
		ixs = append(ixs, sec)
	}
	// NAME=VERSION pins a package to a version the archive still has.
	pins := map[string]string{}
	var names []string
	for _, n := range spec.Packages {
		name, version, pinned := strings.Cut(n, "=")
		if pinned {
			pins[name] = version
		}
		names = append(names, name)
	}
	best := map[string]Resolved{}
	provides := map[string][]string{}
	for _, ix := range ixs {
		for i := range ix.pkgs {
			p := &ix.pkgs[i]
			if p.Architecture != arch && p.Architecture != "all" {
				continue
			}
			if pin, ok := pins[p.Name]; ok {
				if p.Version == pin {
					best[p.Name] = Resolved{Package: p, archive: ix.archive}
				}
			} else if cur, ok := best[p.Name]; !ok || debLess(cur.Version, p.Version) {
				best[p.Name] = Resolved{Package: p, archive: ix.archive}
			}
			for _, pr := range p.Provides {
				provides[pr.Name] = append(provides[pr.Name], p.Name)
			}
		}
	}
	chosen := map[string]Resolved{}
	var queue []string
	for _, n := range names {
		if _, ok := best[n]; !ok {
			if pin, ok := pins[n]; ok {
				return nil, fmt.Errorf("assemble: %s %s is not in %s (or its security suite) any more", n, pin, spec.Suite)
			}
			return nil, fmt.Errorf("assemble: no package %q in %s", n, spec.Suite)
		}
		queue = append(queue, n)
	}
	satisfied := func(r apt.Relation) bool {
		if c, ok := chosen[r.Name]; ok && versionOK(c.Version, r) {
			return true
		}
		if r.Op == "" {
			for _, prov := range provides[r.Name] {
				if _, ok := chosen[prov]; ok {
					return true
				}
			}
		}
		return false
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if _, ok := chosen[name]; ok {
			continue
		}
		p := best[name]
		chosen[name] = p
		for _, group := range append(append([]apt.Alternatives{}, p.PreDepends...), p.Depends...) {
			ok := false
			for _, r := range group {
				if satisfied(r) {
					ok = true
					break
				}
			}
			if ok {
				continue
			}
			pick := ""
			for _, r := range group {
				if c, ok := best[r.Name]; ok && versionOK(c.Version, r) {
					pick = r.Name
					break
				}
				if r.Op == "" && len(provides[r.Name]) > 0 {
					cands := append([]string(nil), provides[r.Name]...)
					sort.Strings(cands)
					pick = cands[0]
					break
				}
			}
			if pick == "" {
				return nil, fmt.Errorf("assemble: %s %s depends on %s, which %s cannot satisfy", p.Name, p.Version, relationsString(group), spec.Suite)
			}
			queue = append(queue, pick)
		}
	}
	res := &Resolution{}
	for _, ix := range ixs {
		res.Releases = append(res.Releases, ix.release)
	}
	for _, p := range chosen {
		res.Packages = append(res.Packages, p)
	}
	sort.Slice(res.Packages, func(i, j int) bool { return res.Packages[i].Name < res.Packages[j].Name })
	return res, nil
}

func relationsString(g apt.Alternatives) string {
	var s []string
	for _, r := range g {
		s = append(s, r.Original)
	}
	return strings.Join(s, " | ")
}

func debLess(a, b string) bool {
	va, err := semantic.Parse(a, "Debian")
	if err != nil {
		return a < b
	}
	c, err := va.CompareStr(b)
	return err == nil && c < 0
}

// versionOK reports whether version satisfies the relation's constraint.
func versionOK(version string, r apt.Relation) bool {
	if r.Op == "" {
		return true
	}
	v, err := semantic.Parse(version, "Debian")
	if err != nil {
		return false
	}
	c, err := v.CompareStr(r.Version)
	if err != nil {
		return false
	}
	switch r.Op {
	case "<<":
		return c < 0
	case "<=":
		return c <= 0
	case "=":
		return c == 0
	case ">=":
		return c >= 0
	case ">>":
		return c > 0
	}
	return false
}
