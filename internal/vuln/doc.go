// Package vuln turns advisories into findings.
//
// It reads OSV records (JSON, the YAML some databases publish, osv.dev's
// per-ecosystem zip exports, tarballs and directories of them) and the
// Alpine secdb format, parses them with the osv-schema Go bindings, and
// stores what matching needs. Matching compares versions with
// osv-scalibr's semantic package under each ecosystem's rules, handling
// ECOSYSTEM and SEMVER ranges and explicit version lists. Findings for
// one package are deduplicated across aliases (CVE, GHSA, GO, PYSEC), and
// withdrawn advisories are kept apart. OpenVEX documents suppress
// findings their authors declared not_affected or fixed.
package vuln
