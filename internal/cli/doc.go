// Package cli is socle's command line: one file per command, each a
// constructor that registers flags in an options struct and a run
// function that calls into the rest of internal/. Errors become exit
// statuses here and nowhere else (see ExitCode).
package cli
