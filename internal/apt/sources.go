package apt

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Source is one apt source: a mirror and the suites it serves.
type Source struct {
	URI        string
	Suites     []string
	Components []string
	SignedBy   string
}

// HostSources reads the host's apt configuration: /etc/apt/sources.list
// (one-line format) and /etc/apt/sources.list.d (both formats). root is
// prefixed to the paths, for tests; pass "" on a real host.
func HostSources(root string) ([]Source, error) {
	var out []Source
	if b, err := os.ReadFile(filepath.Join(root, "/etc/apt/sources.list")); err == nil {
		out = append(out, ParseOneLine(string(b))...)
	}
	dir := filepath.Join(root, "/etc/apt/sources.list.d")
	entries, _ := os.ReadDir(dir)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			continue
		}
		switch {
		case strings.HasSuffix(n, ".sources"):
			out = append(out, ParseDeb822(string(b))...)
		case strings.HasSuffix(n, ".list"):
			out = append(out, ParseOneLine(string(b))...)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no apt source in %s/etc/apt: configure a mirror", root)
	}
	return out, nil
}

// ParseOneLine parses "deb [options] URI suite components..." lines.
func ParseOneLine(s string) []Source {
	var out []Source
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		src := Source{}
		i := 1
		if strings.HasPrefix(f[1], "[") {
			for ; i < len(f); i++ {
				opt := strings.Trim(f[i], "[]")
				if v, ok := strings.CutPrefix(opt, "signed-by="); ok {
					src.SignedBy = v
				}
				if strings.HasSuffix(f[i], "]") {
					i++
					break
				}
			}
		}
		if i+1 >= len(f) {
			continue
		}
		src.URI, src.Suites, src.Components = f[i], []string{f[i+1]}, f[i+2:]
		out = append(out, src)
	}
	return out
}

// ParseDeb822 parses the stanzas of a .sources file.
func ParseDeb822(s string) []Source {
	var out []Source
	for _, stanza := range strings.Split(s, "\n\n") {
		fields := map[string]string{}
		var last string
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				if last != "" {
					fields[last] += "\n" + strings.TrimSpace(line)
				}
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
		if !strings.Contains(" "+fields["types"]+" ", " deb ") || fields["uris"] == "" || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			out = append(out, Source{
				URI: uri, Suites: strings.Fields(fields["suites"]), Components: strings.Fields(fields["components"]),
				SignedBy: fields["signed-by"],
			})
		}
	}
	return out
}

// MirrorFor returns the mirror serving suite, from sources.
func MirrorFor(sources []Source, suite string) (string, bool) {
	for _, s := range sources {
		for _, su := range s.Suites {
			if su == suite {
				return strings.TrimSuffix(s.URI, "/"), true
			}
		}
	}
	return "", false
}
