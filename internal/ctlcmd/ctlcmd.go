// Package ctlcmd is the admin CLI careeropsctl: schema migrations, users, tokens and the
// dead-letter queue. cmd/careeropsctl only wires Run to the process.
package ctlcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/cli"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
	"github.com/careerops/jobs/internal/kinds"
)

// ErrUsage marks a mistake in the command line (unknown command, bad flag, missing argument);
// main exits 2 for it.
var ErrUsage = cli.ErrUsage

type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// env is what every command gets from the process.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

// command is one leaf of the command tree, e.g. "dlq requeue".
type command struct {
	name     string // the words that select it
	synopsis string // the arguments after the name
	short    string // one line for the command list
	help     string // the rest of its --help text
	run      func(ctx context.Context, e *env, c command, args []string) error
}

func commands() []command {
	return []command{migrateUpCommand(), userAddCommand(), tokenCommand(), dlqListCommand(), dlqRequeueCommand(),
		outboxListCommand(), outboxReplayCommand(), jobsCommand(), enqueueCommand(), schedulesCommand()}
}

const topUsage = `careeropsctl administers CareerOps jobs (cover letters and the other kinds).

Usage:
%s
Run "careeropsctl COMMAND --help" for a command's flags.

Environment (only what a command needs is required):
  DATABASE_URL   PostgreSQL URL (migrate up, user add, dlq requeue, outbox, jobs, schedules)
  RABBITMQ_URL   AMQP URL (dlq list, dlq requeue)
  JWT_SECRET     HS256 secret, at least 32 bytes (token)
`

// Run runs careeropsctl with args (without the program name). Output goes to stdout, progress
// and warnings to stderr. --help anywhere prints usage and returns nil. The error it returns
// is one line without secrets; errors.Is(err, ErrUsage) for command-line mistakes.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr}
	err := dispatch(ctx, e, args)
	if err == nil {
		return nil
	}
	c, loadErr := loadConfig(getenv)
	return scrub(errors.Join(err, loadErr), secretsIn(c))
}

func dispatch(ctx context.Context, e *env, args []string) error {
	cmds := commands()
	if len(args) == 0 {
		return usageErrorf("missing command (see careeropsctl --help)")
	}
	if isHelp(args[0]) || args[0] == "help" {
		_, err := fmt.Fprintf(e.stdout, topUsage, list(cmds, ""))
		return err
	}
	if strings.HasPrefix(args[0], "-") {
		return usageErrorf("unknown flag %s (see careeropsctl --help)", args[0])
	}
	for _, c := range cmds {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c.run(ctx, e, c, args[len(words):])
		}
	}
	// A group such as "dlq" without (or with an unknown) subcommand.
	group := args[0]
	var subs []string
	for _, c := range cmds {
		if g, sub, ok := strings.Cut(c.name, " "); ok && g == group {
			subs = append(subs, sub)
		}
	}
	switch {
	case len(subs) == 0:
		return usageErrorf("unknown command %q (see careeropsctl --help)", group)
	case len(args) == 1:
		return usageErrorf("%s: missing subcommand: %s (see careeropsctl %s --help)", group, strings.Join(subs, " or "), group)
	case isHelp(args[1]):
		_, err := fmt.Fprintf(e.stdout, "Usage:\n%s", list(cmds, group))
		return err
	default:
		return usageErrorf("%s: unknown subcommand %q: want %s (see careeropsctl %s --help)",
			group, args[1], strings.Join(subs, " or "), group)
	}
}

// list formats the commands (of one group, or all) for usage text.
func list(cmds []command, group string) string {
	var b strings.Builder
	for _, c := range cmds {
		if group != "" && !strings.HasPrefix(c.name, group+" ") {
			continue
		}
		fmt.Fprintf(&b, "  %s\n      %s\n", strings.TrimSpace("careeropsctl "+c.name+" "+c.synopsis), c.short)
	}
	return b.String()
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help"
}

// parse parses a command's flags and positional arguments, which may come in any order. On
// --help it prints the command's usage to stdout and returns help=true; a bad flag is a
// one-line usage error (the flag package's own output is discarded).
func (c command) parse(e *env, fs *flag.FlagSet, args []string) (positional []string, help bool, err error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, true, c.printUsage(e.stdout, fs)
			}
			return nil, false, usageErrorf("%s: %v (see careeropsctl %s --help)", c.name, err, c.name)
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, false, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func (c command) printUsage(w io.Writer, fs *flag.FlagSet) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s\n\n%s\n", strings.TrimSpace("careeropsctl "+c.name+" "+c.synopsis), c.short)
	if c.help != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(c.help))
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		b.WriteString("\nFlags:\n")
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// scrubbedError is an error rewritten to one line with every secret masked.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrub masks the secrets in err's text and flattens it to one line.
func scrub(err error, secrets []string) error {
	msg := err.Error()
	// Longest first, so a secret containing another is masked whole.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	var b strings.Builder
	for _, line := range strings.FieldsFunc(msg, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		if b.Len() > 0 {
			if !strings.HasSuffix(b.String(), ":") {
				b.WriteString(";")
			}
			b.WriteString(" ")
		}
		b.WriteString(line)
	}
	msg = b.String()
	return &scrubbedError{msg: msg, err: err}
}

// noArgs refuses positional arguments for a command that takes none.
func (c command) noArgs(rest []string) error {
	if len(rest) > 0 {
		return usageErrorf("%s: unexpected argument %q (see careeropsctl %s --help)", c.name, rest[0], c.name)
	}
	return nil
}

// parseNoArgs parses the flags of a command that takes no positional argument; help is
// true when --help was asked for (and printed).
func (c command) parseNoArgs(e *env, fs *flag.FlagSet, args []string) (help bool, err error) {
	rest, help, err := c.parse(e, fs, args)
	if help || err != nil {
		return help, err
	}
	return false, c.noArgs(rest)
}

// parseTarget parses the flags of a command whose target is --all (described by allUsage)
// or one positional argument, named what ("a JOB_ID") in its errors, and returns that
// argument ("" with --all); help is true when --help was asked for (and printed).
func (c command) parseTarget(e *env, fs *flag.FlagSet, args []string, allUsage, what string) (all bool, arg string, help bool, err error) {
	allFlag := fs.Bool("all", false, allUsage)
	rest, help, err := c.parse(e, fs, args)
	if help || err != nil {
		return false, "", help, err
	}
	all = *allFlag
	switch {
	case len(rest) > 1:
		return all, "", false, c.noArgs(rest[1:])
	case all && len(rest) == 1:
		return all, "", false, usageErrorf("%s: give --all or %s, not both", c.name, what)
	case !all && len(rest) == 0:
		return all, "", false, usageErrorf("%s: give --all or %s (see careeropsctl %s --help)", c.name, what, c.name)
	case all:
		return all, "", false, nil
	}
	return all, rest[0], false, nil
}

// kindFlag adds --kind, the job kind a DLQ command works on, to fs.
func kindFlag(fs *flag.FlagSet) *string {
	return fs.String("kind", job.QueueGenerate, fmt.Sprintf("the job kind whose DLQ to use, one of %v", job.Kinds()))
}

// kindRuns are the jobs of the kind called name, in pool.
func kindRuns(pool *pgxpool.Pool, name string) (*jobstore.Runs, error) {
	spec, err := kinds.StoreSpec(name)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return jobstore.New(pool).Runs(spec), nil
}
