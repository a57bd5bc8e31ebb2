// Package watch keeps socle's index in step with registries. Pushes to
// the embedded registry arrive as events; repositories listed under
// watch: in socle.yaml, in any registry, are polled. Either way a scan
// job is queued for every new digest, and the scan job records the image,
// its findings and its tags. At start, Reconcile compares the embedded
// registry with the index, so that nothing pushed before a crash is missed.
package watch
