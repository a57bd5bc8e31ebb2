// Package auth issues and checks socle's API tokens. A token is shown
// once, when it is created; the store keeps only its SHA-256. Each token
// has a role: viewer < developer < approver < admin.
package auth
