// Package oci holds value types for image references, digests and media
// types as socle names them on its command line and in its API. It does no
// I/O and imports no other internal package.
package oci
