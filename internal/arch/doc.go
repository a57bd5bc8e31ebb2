// Package arch holds no code: its test checks how socle's packages may
// depend on each other.
package arch
