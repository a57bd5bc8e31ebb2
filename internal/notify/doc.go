// Package notify delivers socle's events to webhooks: JSON bodies signed
// with HMAC-SHA256 when a secret is set, retried with backoff on network
// errors, 429 and 5xx answers.
package notify
