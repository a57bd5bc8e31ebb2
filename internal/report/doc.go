// Package report writes scan results for people and for machines: a
// table grouped by package, JSON, SARIF 2.1.0, CycloneDX 1.6 (with the
// vulnerabilities) and SPDX 2.3. It also decides the exit status a CI
// gate asks for with --severity and --exit-code.
package report
