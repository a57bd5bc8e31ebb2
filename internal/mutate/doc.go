// Package mutate changes images: it appends local files as layers on a
// parent (as ko and jib do), rebases an image's own layers onto a new
// parent, applies configuration, and runs external Dockerfile builders.
// Every image it makes carries the OCI base annotations naming its
// parent. The name follows go-containerregistry's mutate package, which
// it builds on.
package mutate
