// Command socle keeps every container image an organisation runs patched,
// signed and promotable. See the README for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/socle-dev/socle/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.NewRoot(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	os.Exit(cli.ExitCode(err))
}
