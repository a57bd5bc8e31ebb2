package check

import (
	"strings"
)

// Ignore is an inline ignore comment: "# socle:ignore RULE reason" (the
// document or instruction it is in, or the one after it) or
// "# socle:ignore-file RULE reason" (the whole file). A reason is
// required: a comment without one ignores nothing.
type Ignore struct {
	Rule   string
	Reason string
	File   bool
	// Line is the line of the comment, in files read line by line
	// (Dockerfiles); 0 elsewhere.
	Line int
}

// parseIgnores reads the ignore comments among lines.
func parseIgnores(lines []string) []Ignore {
	var out []Ignore
	for _, l := range lines {
		if ig, ok := parseIgnore(l); ok {
			out = append(out, ig)
		}
	}
	return out
}

// parseIgnore reads one comment line.
func parseIgnore(line string) (Ignore, bool) {
	s := strings.TrimSpace(line)
	s = strings.TrimSpace(strings.TrimPrefix(s, "#"))
	var ig Ignore
	switch {
	case strings.HasPrefix(s, "socle:ignore-file "):
		ig.File = true
		s = strings.TrimPrefix(s, "socle:ignore-file ")
	case strings.HasPrefix(s, "socle:ignore "):
		s = strings.TrimPrefix(s, "socle:ignore ")
	default:
		return ig, false
	}
	fields := strings.Fields(s)
	if len(fields) < 2 || len(fields[0]) > 64 {
		return ig, false
	}
	ig.Rule, ig.Reason = fields[0], strings.Join(fields[1:], " ")
	return ig, true
}

// Suppressor decides which findings are ignored: by inline comments, and
// by the rules a run ignores (--ignore RULE).
type Suppressor struct {
	// Rules are ignored everywhere, with the run's reason.
	Rules map[string]string
}

// apply moves the findings the ignores cover from r.Findings to
// r.Ignored.
func (s Suppressor) apply(r *Report, fs []Finding, ignores []Ignore, covers func(Ignore, Finding) bool) {
	for _, f := range fs {
		if why, ok := s.Rules[f.Rule]; ok {
			r.Ignored = append(r.Ignored, Ignored{Finding: f, Reason: why})
			continue
		}
		ignored := false
		for _, ig := range ignores {
			if (ig.Rule == f.Rule || ig.Rule == "*") && (ig.File || covers == nil || covers(ig, f)) {
				r.Ignored = append(r.Ignored, Ignored{Finding: f, Reason: ig.Reason})
				ignored = true
				break
			}
		}
		if !ignored {
			r.add(f)
		}
	}
}
