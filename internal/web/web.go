package web

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/units"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Renderer renders the dashboard's pages.
type Renderer struct {
	pages map[string]*template.Template
	now   func() time.Time
}

// New parses the templates.
func New() (*Renderer, error) {
	r := &Renderer{pages: map[string]*template.Template{}, now: time.Now}
	funcs := template.FuncMap{
		"short": ShortDigest,
		"ago":   r.ago,
		"sev":   func(s string) string { return "sev-" + strings.ToLower(s) },
		"join":  strings.Join,
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"bytes":   units.Bytes,
		"pathesc": func(s string) string { return strings.ReplaceAll(s, "/", "%2F") },
		"percent": func(f float64) float64 { return 100 * f },
		"pct": func(done, total int) int {
			if total <= 0 {
				return 0
			}
			return done * 100 / total
		},
		"add": func(a, b int) int { return a + b },
		"dur": humanDuration,
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", n, err)
		}
		r.pages[base] = t
	}
	return r, nil
}

// Page is what every page gets besides its own data.
type Page struct {
	Title string
	// User names who is signed in, empty on the login page.
	User string
	Role string
	// CSRF is the token forms must send back.
	CSRF string
	Data any
}

// Render writes page with data.
func (r *Renderer) Render(w io.Writer, page string, p Page) error {
	t, ok := r.pages[page]
	if !ok {
		return fmt.Errorf("no page %q", page)
	}
	return t.ExecuteTemplate(w, "layout.html", p)
}

// Static serves the CSS and JavaScript.
func Static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	return http.StripPrefix("/static/", http.FileServerFS(sub))
}

// ShortDigest returns the first 12 hex digits of a digest, without the
// algorithm: the form the dashboard shows.
func ShortDigest(d string) string {
	algo, _, ok := strings.Cut(d, ":")
	if !ok {
		return d
	}
	return strings.TrimPrefix(oci.ShortDigest(d), algo+":")
}

func (r *Renderer) ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := r.now().Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}

// humanDuration writes a duration in days and hours, "-" for none.
func humanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1f h", d.Hours())
	}
	return fmt.Sprintf("%.1f days", d.Hours()/24)
}
