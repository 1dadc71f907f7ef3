// Command api is the CareerOps api; see internal/apicmd.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/careerops/jobs/internal/apicmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := apicmd.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, apicmd.ErrUsage):
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}
