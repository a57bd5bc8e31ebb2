package oci

// Base annotations name the image an image was built on, as the OCI
// image specification defines them. Every image socle builds carries
// both; lineage reads them.
const (
	AnnotationBaseName   = "org.opencontainers.image.base.name"
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
)
