// Package source opens the images socle reads: from a registry, from an
// OCI image layout directory, or from a `docker save` tarball. Every
// source yields a go-containerregistry v1.Image, so the rest of socle
// never knows where an image came from.
package source
