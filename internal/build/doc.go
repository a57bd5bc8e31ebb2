// Package build makes images without a container daemon: the Debian
// package assembler (a base image from a list of packages, verified
// against the archive, reproducible), append-layer builds (files added as
// layers on a parent, as ko and jib do), rebases onto a new parent, and
// external Dockerfile builds through BuildKit or docker when present.
package build
