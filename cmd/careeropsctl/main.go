// Command careeropsctl is the CareerOps admin CLI: schema migrations, users, tokens and the
// dead-letter queue. Run "careeropsctl --help".
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/careerops/jobs/internal/ctlcmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := ctlcmd.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "careeropsctl: %v\n", err)
		if errors.Is(err, ctlcmd.ErrUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
