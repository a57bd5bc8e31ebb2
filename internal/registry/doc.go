// Package registry is socle's embedded OCI registry: go-containerregistry's
// registry handler, made durable and watchable.
//
// Blobs live in a content-addressed directory. Manifests and tags, which
// the upstream handler keeps in memory, are journaled to disk before a
// push is acknowledged and replayed at start, so the registry survives
// restarts and a SIGKILL loses nothing it acknowledged. Every manifest
// push or delete is reported to an event hook (socle scans what is
// pushed), cross-repository blob mounts are served from the shared blob
// store without copying, and requests are checked against socle's tokens
// when the registry is reachable beyond loopback.
package registry
