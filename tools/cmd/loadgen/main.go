// Command loadgen submits cover-letter jobs to the api at a set pace and reports what became
// of them. See package tools/loadgen; `loadgen --help` lists the flags.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/tools/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := loadgen.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	cli.Exit("loadgen", err)
}
