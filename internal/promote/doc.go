// Package promote moves digests through the environments of socle.yaml:
// it evaluates each environment's gates, waits for approvals, copies the
// digest (blobs mounted, never downloaded) to the environment's
// repository with its signatures, signs a promotion attestation, moves
// the purpose tag, and records every step in the hash-chained audit log.
//
// A promotion is recorded as "moving" before the tag moves and "done"
// after; Reconcile settles a record a crash left moving by looking at the
// tag, so a tag never stays moved without its record, nor a record
// without its tag.
package promote
