package server_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts headless Chromium (Debian's, installed by .ci/run).
// Without it the test fails, unless SOCLE_SKIP_BROWSER=1 says so.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("SOCLE_CHROMIUM")
	if path == "" {
		for _, p := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if full, err := exec.LookPath(p); err == nil {
				path = full
				break
			}
		}
	}
	if path == "" {
		if os.Getenv("SOCLE_SKIP_BROWSER") == "1" {
			t.Skip("SOCLE_SKIP_BROWSER=1: no Chromium here")
		}
		t.Fatal("Chromium not found (.ci/run installs Debian's chromium; set SOCLE_SKIP_BROWSER=1 to skip)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first action starts the browser; it must not carry a timeout,
	// which would stop the browser with it.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// do runs steps with a deadline, failing the test on error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// text returns the visible text of the first element matching sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(tctx, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// TestBrowserPushToCVE is the dashboard end to end: sign in, watch the
// fleet page while an image is pushed to the embedded registry, see it
// appear, open its findings, follow a CVE to the images it affects.
func TestBrowserPushToCVE(t *testing.T) {
	s := newStack(t)
	ctx := browser(t)
	s.importAdvisories("alpine", "vuln-list-alpine-3.10")

	do(t, ctx, "sign in",
		chromedp.Navigate(s.api.URL+"/"),
		chromedp.WaitVisible(`input[name="token"]`),
		chromedp.SendKeys(`input[name="token"]`, s.tokens["viewer"]),
		chromedp.Submit(`input[name="token"]`),
		chromedp.WaitVisible(`#fleet`),
	)
	if fleet := text(t, ctx, `#fleet tbody`); !strings.Contains(fleet, "No image yet") {
		t.Fatalf("fleet before the push: %q", fleet)
	}

	// Push while the page is open: it refreshes itself once the scan lands.
	digest := s.pushAlpine("library/alpine", "3.10")
	short := strings.TrimPrefix(digest, "sha256:")[:12]
	do(t, ctx, "waiting for the pushed image on the fleet page", chromedp.WaitVisible(`#fleet a[href="/images/`+digest+`"]`))
	if rows := text(t, ctx, `#fleet tbody`); !strings.Contains(rows, "library/alpine") || !strings.Contains(rows, short) || !strings.Contains(rows, "3.10") {
		t.Fatalf("fleet row: %q", rows)
	}

	// Open the image and its findings.
	do(t, ctx, "opening the image", chromedp.Click(`#fleet a[href="/images/`+digest+`"]`), chromedp.WaitVisible(`#findings-table`))
	findings := text(t, ctx, `#findings-table tbody`)
	for _, pkg := range []string{"libcrypto1.1", "musl", "busybox", "apk-tools"} {
		if !strings.Contains(findings, pkg) {
			t.Errorf("findings lack %s", pkg)
		}
	}
	// The image's checks: the Alpine image runs as root.
	if checks := text(t, ctx, `#check-findings tbody`); !strings.Contains(checks, "img-root-user") {
		t.Errorf("checks: %q", checks)
	}
	firstCVE := text(t, ctx, `#findings-table a.cve`)
	if !strings.HasPrefix(firstCVE, "CVE-") {
		t.Fatalf("first finding link %q", firstCVE)
	}

	// Follow the CVE to the images it affects, and back to the image.
	do(t, ctx, "following the CVE", chromedp.Click(`#findings-table a.cve`), chromedp.WaitVisible(`#affected-table`))
	title, affected := text(t, ctx, `h1`), text(t, ctx, `#affected-table tbody`)
	if title != firstCVE || !strings.Contains(affected, "library/alpine") || !strings.Contains(affected, short) {
		t.Fatalf("CVE page %q lists %q", title, affected)
	}
	do(t, ctx, "back to the image", chromedp.Click(`#affected-table a.affected-image`), chromedp.WaitVisible(`#findings-table`))
	url, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(url, "/images/"+digest) {
		t.Fatalf("affected image link went to %s", url)
	}
	// The fix runs page renders (none yet).
	do(t, ctx, "the fix runs page", chromedp.Navigate(s.api.URL+"/fixruns"), chromedp.WaitVisible(`#mttr`))
	if mttr := text(t, ctx, `#mttr tbody`); !strings.Contains(mttr, "No fix reached") {
		t.Fatalf("fix runs page: %q", mttr)
	}
}
