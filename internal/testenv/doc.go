// Package testenv finds the project's shared test data and the tools
// tests drive, for tests only.
//
// The shared data (real advisories, images and package databases, each
// described in its MANIFEST) lives outside the repository, in
// ../shared/data next to the checkout; SOCLE_SHARED_DATA overrides the
// place. A test that needs it fails, rather than skips, when it is
// missing, so that a broken CI checkout cannot pass silently.
package testenv
