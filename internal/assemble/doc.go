// Package assemble makes Debian base images without a container daemon:
// it resolves a package list against the signed archive (resolve.go),
// unpacks the verified packages into one reproducible layer with a dpkg
// status database (unpack.go), and writes the users, the CA bundle and
// the image configuration (config.go). The same spec and archive content
// always give the same digest.
package assemble
