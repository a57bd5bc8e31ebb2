# builtin:source-label — the image must say where its source is.
package socle

deny contains msg if {
	labels := object.get(object.get(input.image.config, "config", {}), "Labels", {})
	not labels["org.opencontainers.image.source"]
	msg := "the image has no org.opencontainers.image.source label"
}
