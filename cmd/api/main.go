// Command api is the CareerOps api; see internal/apicmd.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/careerops/jobs/internal/apicmd"
	"github.com/careerops/jobs/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := apicmd.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	cli.Exit("api", err)
}
