// Package apt reads Debian archives the way apt does, without apt: it
// finds the mirror in the host's apt configuration, fetches a suite's
// InRelease and verifies its OpenPGP signature with the archive keyring,
// checks every index and package against the SHA-256 the Release file
// lists, parses Packages indexes and dependency fields, and opens .deb
// files. Downloaded files are cached by hash.
package apt
