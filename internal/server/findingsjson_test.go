package server

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
)

// TestWriteFindingsAsWriteJSON: an image's findings answer is the bytes
// writeJSON writes for it, headers included, through the appender and
// through its fallback (a NaN score, which encoding/json refuses). The
// findings are hand-made.
func TestWriteFindingsAsWriteJSON(t *testing.T) {
	f := vuln.Finding{ID: "CVE-2024-1", Aliases: []string{"DSA-1<2>&3"}, Advisories: []string{"DSA-1<2>&3"},
		Package: sbom.Package{Name: "libssl3", Version: "3.0.1", Type: "deb", Path: "var/lib/dpkg/status", Layer: "sha256:l"},
		Key:     store.PackageKey{Ecosystem: "Debian:12", Name: "openssl", Version: "3.0.1"}, Severity: "HIGH", Score: 7.5,
		Summary: "a \u2028 summary\n", Published: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), Risk: 4.2,
		Ratings: []store.Rating{{ID: "CVE-2024-1", Source: "nvd", Severity: "HIGH", Score: 7.5}}}
	nan := f
	nan.Score = math.NaN()
	for name, fs := range map[string][]vuln.Finding{"two": {f, f}, "none": {}, "nan": {f, nan}} {
		got, want := httptest.NewRecorder(), httptest.NewRecorder()
		writeFindings(got, "sha256:d<>", fs)
		writeJSON(want, 200, map[string]any{"digest": "sha256:d<>", "findings": fs})
		if got.Code != want.Code || got.Body.String() != want.Body.String() ||
			got.Header().Get("Content-Type") != want.Header().Get("Content-Type") || got.Header().Get("Cache-Control") != want.Header().Get("Cache-Control") {
			t.Fatalf("%s: %d %q %v\nwant %d %q %v", name, got.Code, got.Body, got.Header(), want.Code, want.Body, want.Header())
		}
	}
}

// TestCaptureWriterTakesBodies: a body handed over whole is kept as it
// is; mixed with writes, every byte comes back in order.
func TestCaptureWriterTakesBodies(t *testing.T) {
	taken := []byte("whole")
	for name, tc := range map[string]struct {
		run       func(w *captureWriter)
		want      string
		wantTaken bool
	}{
		"taken":           {func(w *captureWriter) { writeBody(w, taken) }, "whole", true},
		"written":         {func(w *captureWriter) { w.Write([]byte("a")); w.Write([]byte("b")) }, "ab", false},
		"write then take": {func(w *captureWriter) { w.Write([]byte("a")); writeBody(w, []byte("b")) }, "ab", false},
		"take then write": {func(w *captureWriter) { writeBody(w, []byte("a")); w.Write([]byte("b")) }, "ab", false},
		"take twice":      {func(w *captureWriter) { writeBody(w, []byte("a")); writeBody(w, []byte("b")) }, "ab", false},
	} {
		w := &captureWriter{header: http.Header{}}
		tc.run(w)
		b, isTaken := w.body()
		if string(b) != tc.want || isTaken != tc.wantTaken || (isTaken && &b[0] != &taken[0]) {
			t.Errorf("%s: %q taken %v", name, b, isTaken)
		}
	}
	rec := httptest.NewRecorder()
	writeBody(rec, []byte("plain writer"))
	if rec.Body.String() != "plain writer" {
		t.Fatalf("a writer that keeps nothing: %q", rec.Body)
	}
}
