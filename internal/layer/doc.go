// Package layer reads one image layer, an OCI tar changeset, as a stream.
//
// Walk visits every entry once, in archive order, with its path cleaned and
// made relative to the layer root. Whiteouts (".wh.NAME") and opaque
// whiteouts (".wh..wh..opq") are reported as such, not as files. Entries
// whose names or hard-link targets would leave the root are refused, and the
// amount of data read is bounded, so that a decompression bomb stops with
// ErrTooLarge instead of exhausting the machine.
//
// Extract writes a layer into a directory through an os.Root, so that no
// entry, and no symbolic link in the tree, can make it write outside that
// directory.
package layer
