// Package audit makes and checks signed checkpoints of the audit log: a
// checkpoint states the log's head (sequence number, hash, count, time),
// signed with socle's signing key and written outside the database (a
// directory, an HTTP endpoint, or a registry as an OCI artifact), so that
// deleting the log's tail or rewriting the whole chain with recomputed
// hashes is detected, as well as editing a row.
package audit
