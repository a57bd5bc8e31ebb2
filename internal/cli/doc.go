// Package cli is socle's command line. Each top-level command has one
// file named after it (scan.go, promote.go, serve.go...), holding its
// constructor, its options struct and a run function that calls into the
// rest of internal/; a subcommand of a group large enough to want its
// own file is named GROUP_SUB.go (db_sync.go). root.go holds the global
// flags, the store and the scanner every command opens; output.go the
// output formats; exit.go the exit statuses. Errors become exit
// statuses here and nowhere else (see ExitCode).
package cli
