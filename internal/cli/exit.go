package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit statuses, documented in the README:
//
//	0  success, or findings below the --exit-code gate
//	1  an error
//	2  a usage error (bad flag or argument)
//	N  what --exit-code asked for when findings remain
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// statusError carries a status a command wants without being a failure
// to report, such as findings over a gate.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// usageErr marks a bad flag or argument: exit status 2.
type usageErr struct{ err error }

func (e *usageErr) Error() string { return e.err.Error() }
func (e *usageErr) Unwrap() error { return e.err }

func usageError(err error) error { return &usageErr{err} }

// ExitCode maps the error a command returned to the process status,
// printing it first when it is a failure.
func ExitCode(err error) int { return Exit(os.Stderr, err) }

// Exit is ExitCode writing the message to w.
func Exit(w io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	var st *statusError
	if errors.As(err, &st) {
		if st.msg != "" {
			fmt.Fprintln(w, st.msg)
		}
		return st.code
	}
	fmt.Fprintln(w, "socle:", err)
	var ue *usageErr
	if errors.As(err, &ue) || isCobraUsage(err) {
		return exitUsage
	}
	return exitError
}

// isCobraUsage recognises the flag and argument errors cobra returns.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand flag", "unknown command", "accepts ", "requires at least", "invalid argument", "flag needs an argument", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
