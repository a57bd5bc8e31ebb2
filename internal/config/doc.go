// Package config reads socle.yaml into typed structs. Every field is
// documented where it is declared; unknown fields are errors, and every
// error names its line and field, so that a typo never silently turns a
// setting off.
package config
