package store

import (
	"context"
	"time"
)

// Running is one container of a workload running a digest in a
// cluster, as the cluster reports it.
type Running struct {
	Cluster   string
	Namespace string
	// Workload is KIND/NAME of the pod's top owner (Deployment/shop,
	// CronJob/report), or Pod/NAME for a bare pod.
	Workload  string
	Container string
	// Environment is the socle environment the namespace maps to ("" for
	// namespaces no mapping names).
	Environment string
	Repository  string
	Digest      string
	// Pods is how many pods run it.
	Pods int
	// Since is when this digest was first seen running in this container
	// of this workload; StoppedAt when it was last seen gone (zero while
	// it runs).
	Since     time.Time
	LastSeen  time.Time
	StoppedAt time.Time
}

// RunningQuery selects inventory rows; empty fields match everything.
type RunningQuery struct {
	Cluster     string
	Environment string
	Digest      string
	// Stopped includes the rows that no longer run.
	Stopped bool
}

// Inventory records what runs in the clusters.
type Inventory interface {
	// SyncRunning makes rows the whole of what runs in cluster at now:
	// new rows start, known ones are seen again, and rows of the cluster
	// that are not in rows stop. It reports how many rows started or
	// stopped.
	SyncRunning(ctx context.Context, cluster string, rows []Running, now time.Time) (started, stopped int, err error)
	// RunningImages returns inventory rows, the longest-running first.
	RunningImages(ctx context.Context, q RunningQuery) ([]Running, error)
}
