// Command osvdb writes Alpine secdb documents, converted as socle
// imports them, as osv.dev's per-ecosystem exports (DIR/Alpine/all.zip):
// the local database osv-scanner reads offline, so that bench/scan.sh
// runs both scanners on the same OSV records.
//
//	osvdb DIR SECDB-FILE...
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/socle-dev/socle/internal/vuln"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: osvdb DIR SECDB-FILE...")
		os.Exit(2)
	}
	var docs []*vuln.SecDB
	for _, p := range os.Args[2:] {
		b, err := os.ReadFile(p)
		if err != nil {
			fail(err)
		}
		d, err := vuln.ParseSecDB(b, strings.HasSuffix(p, ".json"))
		if err != nil {
			fail(fmt.Errorf("%s: %w", p, err))
		}
		docs = append(docs, d)
	}
	if err := vuln.WriteEcosystemZips(os.Args[1], vuln.SecDBToOSV(docs, time.Unix(0, 0))); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "osvdb:", err)
	os.Exit(1)
}
