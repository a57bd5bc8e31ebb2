// Package server is socle's HTTP face: the REST API under /api/v1, the
// dashboard, health and metrics endpoints, and the token checks in front
// of them. It is the only place where errors become status codes
// (errors.go), and the only importer of internal/web.
package server
