// Package app is the composition root of the long-running programs: the api, the worker and
// fakeopenai. Each is a cli.RunFunc (cmd/* only hands it the process): it reads its settings
// (package config), builds what it runs on (base: telemetry, pool, broker connection,
// publisher, outbox relay, registry, readiness), runs its parts as a group that stops as one
// (group), and shuts down in its order.
package app

import (
	"context"
	"fmt"
	"io"

	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/internal/config"
	"github.com/careerops/jobs/internal/telemetry"
)

// Options adapt a program to a caller other than main: tests run the programs in process.
type Options struct {
	// Telemetry, if set, replaces the telemetry the program builds from its settings (a test
	// records spans and logs); the caller shuts it down.
	Telemetry *telemetry.Telemetry
	// Ready, if set, is called with the program's listen address once it serves.
	Ready func(addr string)
}

// ready reports addr to o.Ready, if set.
func (o Options) ready(addr string) {
	if o.Ready != nil {
		o.Ready(addr)
	}
}

// settings is a program's configuration as runProgram needs it: a pointer to it.
type settings[C any] interface {
	*C
	config.Validator
	diagnostics() Diagnostics
}

func (d Diagnostics) diagnostics() Diagnostics { return d }

// program is a program with telemetry: its name for --help and its service name.
type program struct {
	config.Program
	service string
}

// runProgram is a program with telemetry as main runs it: it reads its configuration
// (defaults, then the environment and the command line; --help prints the usage instead),
// starts its telemetry unless o brings one, and serves until ctx ends.
func runProgram[C any, P settings[C]](o Options, p program, defaults func() C,
	serve func(context.Context, C, *telemetry.Telemetry, Options) error,
) cli.RunFunc {
	return func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		cfg := defaults()
		if help, err := config.Parse(p.Program, args, getenv, stdout, P(&cfg)); help || err != nil {
			return err
		}
		tel := o.Telemetry
		if tel == nil {
			t, err := telemetry.Start(ctx, p.service, P(&cfg).diagnostics().Telemetry, stderr)
			if err != nil {
				return fmt.Errorf("config: %w", err)
			}
			defer t.Close()
			tel = t
		}
		return serve(ctx, cfg, tel, o)
	}
}
