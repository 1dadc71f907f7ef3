// Command worker is the CareerOps worker; see internal/workercmd.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/internal/workercmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := workercmd.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	cli.Exit("worker", err)
}
