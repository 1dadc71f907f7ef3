// Command careeropsctl is the CareerOps admin CLI: schema migrations, users, tokens and the
// dead-letter queue. Run "careeropsctl --help".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/internal/ctlcmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := ctlcmd.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	cli.Exit("careeropsctl", err)
}
