package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/report"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
)

// imageOptions are the flags of every command that opens an image.
type imageOptions struct {
	platform string
	insecure bool
}

func (o *imageOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.platform, "platform", "linux/amd64", "platform to pick from a multi-platform image (os/arch[/variant])")
	insecureFlag(f, &o.insecure)
}

func (o *imageOptions) sourceOptions(dataDir string) (source.Options, error) {
	p, err := v1.ParsePlatform(o.platform)
	if err != nil {
		return source.Options{}, usageError(fmt.Errorf("--platform %q: %w", o.platform, err))
	}
	return source.Options{Platform: p, InsecureRegistryUnsafe: o.insecure, TempDir: os.TempDir()}, nil
}

type scanOptions struct {
	image         imageOptions
	output        string
	file          string
	severity      string
	exitCode      int
	ignoreUnfixed bool
	vex           []string
	index         bool
	progress      bool
	// upload sends the SBOM to the server, which matches it; name is the
	// repository[:tag] it is recorded under.
	upload bool
	name   string
	// sort is "package" or "risk"; severitySource a source order.
	sort           string
	severitySource string
}

func (o *scanOptions) AddFlags(f *pflag.FlagSet) {
	o.image.AddFlags(f)
	f.StringVarP(&o.output, "output", "o", "table", "output format: "+strings.Join(report.Formats, ", "))
	f.StringVar(&o.file, "file", "", "write the report to this file instead of standard output")
	f.StringVar(&o.severity, "severity", "", "report only these severities, comma-separated (CRITICAL,HIGH,MEDIUM,LOW,UNKNOWN)")
	f.IntVar(&o.exitCode, "exit-code", 0, "exit with this status when any reported vulnerability remains")
	f.BoolVar(&o.ignoreUnfixed, "ignore-unfixed", false, "report only vulnerabilities that have a fixed version")
	f.StringArrayVar(&o.vex, "vex", nil, "OpenVEX document whose not_affected and fixed statements suppress findings (repeatable)")
	f.BoolVar(&o.index, "index", true, "record the image and its findings in the store, for later queries")
	f.BoolVar(&o.progress, "progress", isTerminal(os.Stderr), "show layer progress on standard error")
	f.BoolVar(&o.upload, "upload", false, "send the SBOM to the socle server (socle login, or SOCLE_SERVER/SOCLE_TOKEN), which matches it, keeps watching it and answers with the findings reported here; the server never pulls the image")
	f.StringVar(&o.name, "name", "", "with --upload: the REPOSITORY[:TAG] the image is recorded under (default the reference's)")
	f.StringVar(&o.sort, "sort", "package", "order findings by package or by risk (severity × exploitation × exposure)")
	f.StringVar(&o.severitySource, "severity-source", "", "order of the sources a severity is taken from, comma-separated (default vendor,ecosystem,nvd,ghsa)")
}

func newScanCmd(g *globals) *cobra.Command {
	o := &scanOptions{}
	cmd := &cobra.Command{
		Use:   "scan REF",
		Short: "Inventory an image layer by layer and match it against advisories",
		Long: `Scan an image and report the vulnerabilities of its packages.

REF is a registry reference (registry.example/app:1.2), an OCI layout
directory (oci:DIR, oci:DIR:TAG, oci:DIR@DIGEST) or a docker save tarball
(docker-archive:FILE, gzip accepted). Layers are analysed once and cached by
digest: a second image sharing base layers reads only its own.`,
		Example: `  socle scan docker-archive:alpine.tar.gz
  socle scan -o sarif --file scan.sarif registry.example/app:1.2
  socle scan --severity CRITICAL,HIGH --ignore-unfixed --exit-code 1 oci:./layout`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd.Context(), g, o, args[0])
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runScan(ctx context.Context, g *globals, o *scanOptions, refArg string) error {
	if !validFormat(o.output, report.Formats) {
		return usageError(fmt.Errorf("--output %q: want one of %s", o.output, strings.Join(report.Formats, ", ")))
	}
	filter := report.Filter{IgnoreUnfixed: o.ignoreUnfixed}
	if o.severity != "" {
		sev, err := vuln.ParseSeverities(o.severity)
		if err != nil {
			return usageError(fmt.Errorf("--severity: %w", err))
		}
		filter.Severities = sev
	}
	if o.sort != "package" && o.sort != "risk" {
		return usageError(fmt.Errorf("--sort %q: want package or risk", o.sort))
	}
	if o.severitySource != "" {
		if _, err := vuln.ParseSeverityOrder(o.severitySource); err != nil {
			return usageError(fmt.Errorf("--severity-source: %w", err))
		}
	}
	vex, err := loadVEX(o.vex)
	if err != nil {
		return err
	}
	ref, err := oci.ParseImageRef(refArg)
	if err != nil {
		return usageError(err)
	}
	sopts, err := o.image.sourceOptions(g.dataDir)
	if err != nil {
		return err
	}
	if o.upload {
		return runScanUpload(ctx, g, o, ref, sopts, filter)
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	note, err := ensureAdvisories(ctx, g, st)
	if err != nil {
		return err
	}
	img, err := source.Open(ctx, ref, sopts)
	if err != nil {
		return err
	}
	defer img.Close()
	sc, err := newScanner(g, st)
	if err != nil {
		return err
	}
	opts := scan.Options{Index: o.index, VEX: vex}
	if o.progress {
		opts.Progress = progressPrinter(g.errOut)
	}
	res, err := sc.Scan(ctx, img, opts)
	if err != nil {
		return err
	}
	if err := rankScan(ctx, g, st, o, res); err != nil {
		return err
	}
	res.Findings = filter.Apply(res.Findings)
	note, err = advisoryNote(ctx, st, res.Inventory, note)
	if err != nil {
		return err
	}
	if err := writeTo(g.out, o.file, func(w io.Writer) error { return report.Write(w, o.output, res, note) }); err != nil {
		return err
	}
	if code := report.ExitCode(res.Findings, o.exitCode); code != 0 {
		return &statusError{code: code}
	}
	return nil
}

func loadVEX(paths []string) (*vuln.VEX, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	v := &vuln.VEX{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("--vex: %w", err)
		}
		if _, err := v.ParseVEXDocument(b); err != nil {
			return nil, fmt.Errorf("--vex %s: %w", p, err)
		}
	}
	return v, nil
}

func dirOf(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[:i+1]
	}
	return "."
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func progressPrinter(w io.Writer) func(scan.Progress) {
	return func(p scan.Progress) {
		state := "reading"
		if p.Done {
			state = "read"
			if p.Cached {
				state = "cached"
			}
		}
		fmt.Fprintf(w, "layer %d/%d %s %s\n", p.Layer+1, p.Layers, oci.ShortDigest(p.Digest), state)
	}
}

// ensureAdvisories loads the bundled sample when the store holds no
// advisory at all, and says so.
func ensureAdvisories(ctx context.Context, g *globals, st store.Store) (report.AdvisoryNote, error) {
	n, err := st.AdvisoryCount(ctx)
	if err != nil {
		return report.AdvisoryNote{}, err
	}
	if n > 0 {
		return report.AdvisoryNote{}, nil
	}
	stats, err := vuln.ImportBundled(ctx, st)
	if err != nil {
		return report.AdvisoryNote{}, fmt.Errorf("loading the bundled sample advisories: %w", err)
	}
	fmt.Fprintf(g.errOut, "No advisories were imported; loaded the bundled SAMPLE set (%d records). It is small and incomplete:\n"+
		"import real data with `socle db import PATH` or `socle db sync` before trusting a clean result.\n", stats.Records)
	return report.AdvisoryNote{}, nil
}

// advisoryNote describes the advisories the image's ecosystems were
// matched against, and warns about ecosystems with none.
func advisoryNote(ctx context.Context, st store.Advisories, inv *sbom.Inventory, note report.AdvisoryNote) (report.AdvisoryNote, error) {
	stats, err := st.AdvisoryStats(ctx)
	if err != nil {
		return note, err
	}
	byEco := map[string]store.EcosystemStat{}
	for _, s := range stats {
		byEco[s.Ecosystem] = s
	}
	seen := map[string]bool{}
	var missing []string
	onlySample := true
	for _, p := range inv.Packages {
		if p.Ecosystem == "" || seen[p.Ecosystem] {
			continue
		}
		seen[p.Ecosystem] = true
		s, ok := byEco[p.Ecosystem]
		if base, _, _ := strings.Cut(p.Ecosystem, ":"); !ok {
			s, ok = byEco[base]
		}
		if !ok {
			missing = append(missing, p.Ecosystem)
			continue
		}
		line := fmt.Sprintf("%s: %d records from %s", s.Ecosystem, s.Records, strings.Join(s.Sources, ", "))
		if !s.NewestModified.IsZero() {
			line += ", newest modified " + s.NewestModified.Format("2006-01-02")
		}
		note.Lines = append(note.Lines, line)
		for _, src := range s.Sources {
			if src != vuln.BundledSource {
				onlySample = false
			}
		}
	}
	var warn []string
	if len(missing) > 0 {
		warn = append(warn, fmt.Sprintf("no advisories are loaded for %s: those packages were not checked", strings.Join(missing, ", ")))
	}
	if len(note.Lines) > 0 && onlySample {
		warn = append(warn, "only the bundled SAMPLE advisories are loaded; results are incomplete")
	}
	note.Warning = strings.Join(warn, "; ")
	return note, nil
}

// runScanUpload inventories the image here (layers cached in the local
// store), sends its CycloneDX SBOM to the server, and reports the
// findings the server matched.
func runScanUpload(ctx context.Context, g *globals, o *scanOptions, ref oci.ImageRef, sopts source.Options, filter report.Filter) error {
	c, err := g.remote()
	if err != nil {
		return err
	}
	if c == nil {
		return usageError(fmt.Errorf("--upload: %w", errNoServer))
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	img, err := source.Open(ctx, ref, sopts)
	if err != nil {
		return err
	}
	defer img.Close()
	sc, err := newScanner(g, st)
	if err != nil {
		return err
	}
	var progress func(scan.Progress)
	if o.progress {
		progress = progressPrinter(g.errOut)
	}
	inv, err := sc.Inventory(ctx, img, progress)
	if err != nil {
		return err
	}
	repo, tag := img.Repository, img.Tag
	if o.name != "" {
		repo, tag, _ = strings.Cut(o.name, ":")
	}
	if repo == "" {
		return usageError(errors.New("--upload: this image has no repository name: give --name REPOSITORY[:TAG]"))
	}
	var buf bytes.Buffer
	if err := sbom.WriteCycloneDX(&buf, sbom.CycloneDX(inv, sbom.ImageName{Repository: repo, Tag: tag})); err != nil {
		return err
	}
	image := repo + "@" + inv.Digest
	if tag != "" {
		image = repo + ":" + tag + "@" + inv.Digest
	}
	b, err := c.Raw(ctx, "POST", "/api/v1/sboms?"+url.Values{"image": {image}}.Encode(), &buf, "application/vnd.cyclonedx+json")
	if err != nil {
		return err
	}
	var ans struct {
		Findings []vuln.Finding `json:"findings"`
		Problems []string       `json:"problems"`
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return fmt.Errorf("the server's answer: %w", err)
	}
	for _, p := range ans.Problems {
		fmt.Fprintln(g.errOut, "socle server: "+p)
	}
	fmt.Fprintf(g.errOut, "uploaded %s to %s: the server watches it\n", image, c.Server())
	res := &scan.Result{Ref: ref.String(), Repository: repo, Tag: tag, Inventory: inv, Findings: filter.Apply(ans.Findings)}
	if o.severitySource != "" {
		order, _ := vuln.ParseSeverityOrder(o.severitySource)
		vuln.Reorder(res.Findings, order)
	}
	if o.sort == "risk" {
		vuln.SortByRisk(res.Findings)
	}
	if err := writeTo(g.out, o.file, func(w io.Writer) error { return report.Write(w, o.output, res, report.AdvisoryNote{}) }); err != nil {
		return err
	}
	if code := report.ExitCode(res.Findings, o.exitCode); code != 0 {
		return &statusError{code: code}
	}
	return nil
}

// rankScan re-picks severities in --severity-source's order, sets each
// finding's risk from where the image runs (the store's deployments and
// running pods, ranked in socle.yaml's promotion order) and sorts by it
// with --sort risk.
func rankScan(ctx context.Context, g *globals, st vuln.ExposureReader, o *scanOptions, res *scan.Result) error {
	if o.severitySource != "" {
		order, _ := vuln.ParseSeverityOrder(o.severitySource)
		vuln.Reorder(res.Findings, order)
	}
	envs, err := vuln.PlacementOf(ctx, st, res.Inventory.Digest)
	if err != nil {
		return err
	}
	var order []string
	if cfg, err := loadConfig(g, ""); err == nil && cfg != nil {
		for _, e := range cfg.Environments {
			order = append(order, e.Name)
		}
	}
	vuln.Rank(res.Findings, envs, order)
	if o.sort == "risk" {
		vuln.SortByRisk(res.Findings)
	}
	return nil
}
