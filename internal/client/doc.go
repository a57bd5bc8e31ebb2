// Package client is socle's API client: the command line's way to a
// socle server, with a token whose role decides what it may do.
package client
