// Package cli holds what every program's main shares: how it runs and how an error ends the
// process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// ErrUsage marks a mistake on the command line; the process exits 2.
var ErrUsage = errors.New("usage")

// RunFunc is every program: it runs until ctx ends (or its work is done) with the command
// line args (without the program name), the environment getenv, and its output streams.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// Main runs a program as the process: run gets the process's arguments, environment and
// output under a context that SIGINT and SIGTERM cancel, and its result ends the process
// (see Exit).
func Main(program string, run RunFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	Exit(program, err)
}

// Exit ends the process for run's result: 0 for nil, else the error as one line on stderr
// and 2 for usage errors, 1 for the rest.
func Exit(program string, err error) {
	if err == nil {
		os.Exit(0)
	}
	code := 1
	if errors.Is(err, ErrUsage) {
		code = 2
	}
	Report(os.Stderr, program, err)
	os.Exit(code)
}

// Report writes err as one line: multi-line messages (some drivers write them) are folded.
func Report(w io.Writer, program string, err error) {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
	fmt.Fprintf(w, "%s: %s\n", program, msg)
}
