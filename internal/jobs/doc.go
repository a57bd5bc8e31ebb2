// Package jobs runs socle's background work from the store's durable
// queue. A runner claims jobs with a lease it renews while the job runs;
// when a process dies, its leases expire and another runner, or the same
// one restarted, takes the jobs over. Shutting down stops claiming at
// once and lets running jobs finish within a grace period.
package jobs
