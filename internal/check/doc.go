// Package check runs policy and hardening rules over Dockerfiles,
// Kubernetes manifests and images: Pod Security Standards and hardening
// rules for workloads, schema validation against the Kubernetes API's
// structured schema, Dockerfile hygiene, image rules and layer
// efficiency, and conftest-compatible Rego policies. Every rule has an
// ID, a severity, a one-line why and a fix hint; findings can be ignored
// inline (# socle:ignore RULE reason), per file and per run.
package check
