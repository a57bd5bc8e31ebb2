# builtin:no-critical-fixable — no critical finding that has a fix.
package socle

deny contains msg if {
	some f in input.findings
	f.severity == "CRITICAL"
	f.fixed_version != ""
	msg := sprintf("critical %s in %s %s is fixed in %s", [f.id, f.package, f.version, f.fixed_version])
}
