# builtin:known-base — the image must descend from a base socle knows
# (its lineage reaches at least one base image).
package socle

deny contains msg if {
	count(input.lineage) < 2
	msg := "socle knows no base of this image: build it on a catalog image, or scan its base"
}
