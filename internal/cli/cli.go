// Package cli holds what every program's main shares: how an error ends the process.
package cli

import (
	"flag"

	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kelseyhightower/envconfig"
)

// ErrUsage marks a mistake on the command line; the process exits 2.
var ErrUsage = errors.New("usage")

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

// Validator is a configuration that checks itself.
type Validator interface{ Validate() error }

// Configure handles the command line of a program configured only by its environment: with
// -h or --help it prints usage (about, then every variable of cfg) to stdout and reports
// help=true; a flag or argument is a usage error; otherwise envconfig fills cfg from the
// environment and cfg validates itself.
func Configure(name, about string, args []string, stdout io.Writer, cfg Validator) (help bool, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned as one line
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "Usage: %s\n\n%s\n\nConfigured by the environment:\n", name, about)
			return true, envconfig.Usagef("", cfg, stdout, envconfig.DefaultTableFormat)
		}
		return false, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	if err := envconfig.Process("", cfg); err != nil {
		return false, fmt.Errorf("config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return false, fmt.Errorf("config: %w", err)
	}
	return false, nil
}
