package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/vuln"
)

func writeTable(w io.Writer, res *scan.Result, note AdvisoryNote) error {
	inv := res.Inventory
	name := res.Ref
	if res.Repository != "" && res.Tag != "" {
		name = res.Repository + ":" + res.Tag
	}
	fmt.Fprintf(w, "%s (%s)\n", name, inv.Digest)
	osName := inv.OS.String()
	if inv.OS.Release != "" && !strings.Contains(osName, inv.OS.Release) {
		osName += " (" + inv.OS.Release + ")"
	}
	fmt.Fprintf(w, "OS: %s   Platform: %s   Packages: %d   Layers: %d (%d reused from cache)\n\n",
		osName, orDash(inv.Platform), len(inv.Packages), len(inv.Layers), inv.ReusedLayers)

	if len(res.Findings) == 0 {
		fmt.Fprintln(w, "No vulnerabilities found.")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PACKAGE\tVERSION\tVULNERABILITY\tSEVERITY\tRISK\tFIXED IN\tLAYER")
		for _, g := range groupByPackage(res.Findings) {
			label := g.pkg.Name
			if g.pkg.Namespace != "" {
				label = g.pkg.Namespace + ":" + g.pkg.Name
			}
			if g.pkg.SourceName != "" && g.pkg.SourceName != g.pkg.Name {
				label += " (" + g.pkg.SourceName + ")"
			}
			for i, f := range g.findings {
				pkgCol, verCol, layerCol := "", "", ""
				if i == 0 {
					pkgCol, verCol = label, g.pkg.Version
					layerCol = fmt.Sprintf("%d %s", g.pkg.LayerIndex, oci.ShortDigest(g.pkg.Layer))
				}
				id := f.ID
				if len(f.Aliases) > 0 {
					id += " (+" + fmt.Sprint(len(f.Aliases)) + ")"
				}
				if !f.KEV.IsZero() {
					id += " [KEV]"
				}
				fixed := orDash(f.FixedVersion)
				if f.FixState == vuln.FixStateWontFix {
					fixed = "(won't fix)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%s\t%s\n", pkgCol, verCol, id, f.Severity, f.Risk, fixed, layerCol)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\n%s\n", SummaryLine(res.Findings))
	if len(res.Withdrawn) > 0 {
		fmt.Fprintf(w, "\nWithdrawn advisories that would have matched (not counted): %d\n", len(res.Withdrawn))
		for _, f := range res.Withdrawn {
			fmt.Fprintf(w, "  %s  %s %s\n", f.ID, f.Package.Name, f.Package.Version)
		}
	}
	if len(res.Suppressed) > 0 {
		fmt.Fprintf(w, "\nSuppressed by VEX: %d\n", len(res.Suppressed))
		for _, f := range res.Suppressed {
			fmt.Fprintf(w, "  %s  %s %s  (%s)\n", f.ID, f.Package.Name, f.Package.Version, f.Suppressed)
		}
	}
	if len(note.Lines) > 0 {
		fmt.Fprintln(w, "\nAdvisories used:")
		for _, l := range note.Lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	if note.Warning != "" {
		fmt.Fprintf(w, "\nWARNING: %s\n", note.Warning)
	}
	var warnings []string
	for _, l := range inv.Layers {
		for _, x := range l.Warnings {
			warnings = append(warnings, fmt.Sprintf("layer %d: %s", l.Index, x))
		}
	}
	if len(warnings) > 0 {
		fmt.Fprintln(w, "\nInventory warnings:")
		for _, x := range warnings {
			fmt.Fprintf(w, "  %s\n", x)
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
