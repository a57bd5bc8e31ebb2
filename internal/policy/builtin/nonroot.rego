# builtin:nonroot — the image must not run as root.
package socle

deny contains msg if {
	user := object.get(object.get(input.image.config, "config", {}), "User", "")
	user in {"", "0", "root", "0:0", "root:root"}
	msg := sprintf("the image runs as root (User %q): set a non-root user", [user])
}
