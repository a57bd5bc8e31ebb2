// Package admission is socle's Kubernetes admission: a validating
// webhook that admits an image into a namespace only when its digest was
// promoted to the namespace's environment (or a later one), and a
// mutating webhook that pins tags to the digest socle recorded.
//
// Decisions are made from a Snapshot held in memory, rebuilt from the
// store when its data generation changes; the request path never waits
// on the database or a registry. Signatures required by an environment
// are verified in the background, once per digest.
package admission
