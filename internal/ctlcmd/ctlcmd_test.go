package ctlcmd_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/careerops/jobs/internal/ctlcmd"
)

// result is what one careeropsctl run produced.
type result struct {
	stdout, stderr string
	err            error
}

// run runs careeropsctl with args and an environment holding only vars.
func run(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := ctlcmd.Run(ctx, args, func(k string) string { return vars[k] }, &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// runOK runs careeropsctl like run and fails the test at once if the command fails.
func runOK(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	res := run(t, vars, args...)
	if res.err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), res.err)
	}
	return res
}

// wantStdout runs careeropsctl and checks that the command succeeds and prints want.
func wantStdout(t *testing.T, vars map[string]string, want string, args ...string) {
	t.Helper()
	if res := runOK(t, vars, args...); res.stdout != want {
		t.Errorf("%s: stdout = %q, want %q", strings.Join(args, " "), res.stdout, want)
	}
}

// requireOneLineError checks that err is a single line, as main prints it.
func requireOneLineError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("err = nil, want an error")
	}
	if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("error is not one line: %q", msg)
	}
}

func TestRun_HelpPrintsUsageAndSucceeds(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--help"},
		{"-h"},
		{"help"},
		{"migrate", "up", "--help"},
		{"migrate", "-h"},
		{"user", "add", "-h"},
		{"token", "--help"},
		{"dlq", "--help"},
		{"dlq", "list", "--help"},
		{"dlq", "requeue", "--help"},
		{"dlq", "requeue", "job-1", "--help"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			res := runOK(t, nil, args...)
			if !strings.Contains(res.stdout, "Usage") {
				t.Fatalf("stdout = %q, want usage", res.stdout)
			}
		})
	}
}

func TestRun_CommandLineMistakesAreUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "missing command"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown top-level flag", []string{"--verbose"}, "unknown flag --verbose"},
		{"group without subcommand", []string{"dlq"}, "missing subcommand"},
		{"unknown subcommand", []string{"dlq", "purge"}, `unknown subcommand "purge"`},
		{"migrate without up", []string{"migrate"}, "missing subcommand: up"},
		{"migrate with an argument", []string{"migrate", "up", "now"}, `unexpected argument "now"`},
		{"unknown flag", []string{"token", "--user", "1", "--bogus"}, "flag provided but not defined: -bogus"},
		{"flag without value", []string{"user", "add", "--email"}, "flag needs an argument"},
		{"user add without email", []string{"user", "add"}, "--email is required"},
		{"user add with a display name", []string{"user", "add", "--email", "Ada <ada@example.com>"}, "not a bare email address"},
		{"user add with junk", []string{"user", "add", "--email", "not-an-email"}, "not a bare email address"},
		{"token without user", []string{"token"}, "--user must be a positive user id"},
		{"token with a non-numeric user", []string{"token", "--user", "ada"}, "invalid value"},
		{"token with zero ttl", []string{"token", "--user", "1", "--ttl", "0s"}, "--ttl must be"},
		{"token with a ttl over a year", []string{"token", "--user", "1", "--ttl", "8761h"}, "--ttl must be"},
		{"dlq list with zero limit", []string{"dlq", "list", "--limit", "0"}, "--limit must be"},
		{"dlq requeue without target", []string{"dlq", "requeue"}, "give --all or a JOB_ID"},
		{"dlq requeue with both", []string{"dlq", "requeue", "--all", "job-1"}, "not both"},
		{"dlq requeue with two ids", []string{"dlq", "requeue", "job-1", "job-2"}, `unexpected argument "job-2"`},
		{"dlq requeue with a bad id", []string{"dlq", "requeue", "no/such id"}, "is not a job id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, nil, tc.args...)
			requireOneLineError(t, res.err)
			if !errors.Is(res.err, ctlcmd.ErrUsage) {
				t.Errorf("errors.Is(%v, ErrUsage) = false", res.err)
			}
			if !strings.Contains(res.err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", res.err, tc.want)
			}
			if res.stdout != "" {
				t.Errorf("stdout = %q, want nothing", res.stdout)
			}
		})
	}
}

func TestRun_MissingConfigIsOneClearLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"migrate needs the database", nil, []string{"migrate", "up"}, "config: DATABASE_URL is required"},
		{"user add needs the database", nil, []string{"user", "add", "--email", "ada@example.com"}, "config: DATABASE_URL is required"},
		{"dlq list needs the broker only", map[string]string{"DATABASE_URL": ""}, []string{"dlq", "list"}, "config: RABBITMQ_URL is required"},
		{"dlq requeue needs both", nil, []string{"dlq", "requeue", "--all"}, "config: DATABASE_URL is required; RABBITMQ_URL is required"},
		{"token needs the secret", nil, []string{"token", "--user", "1"}, "config: JWT_SECRET is required"},
		{"token needs a long secret", map[string]string{"JWT_SECRET": "too-short-secret"}, []string{"token", "--user", "1"}, "config: JWT_SECRET must be at least 32 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, tc.vars, tc.args...)
			requireOneLineError(t, res.err)
			if res.err.Error() != tc.want {
				t.Errorf("err = %q, want %q", res.err, tc.want)
			}
			if errors.Is(res.err, ctlcmd.ErrUsage) {
				t.Errorf("a config error is not a usage error: %v", res.err)
			}
		})
	}
}

func TestRun_ErrorsNeverShowSecrets(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-s3cret"
	for _, tc := range []struct {
		name string
		vars map[string]string
		args []string
	}{
		{"unparsable database URL", map[string]string{"DATABASE_URL": "postgres://ada:" + secret + "@127.0.0.1:port/db"}, []string{"migrate", "up"}},
		{"unreachable database", map[string]string{"DATABASE_URL": "postgres://ada:" + secret + "@127.0.0.1:1/db?sslmode=disable"}, []string{"user", "add", "--email", "ada@example.com"}},
		{"keyword database DSN", map[string]string{"DATABASE_URL": "host=127.0.0.1 port=1 user=ada password=" + secret}, []string{"user", "add", "--email", "ada@example.com"}},
		{"unparsable broker URL", map[string]string{"RABBITMQ_URL": "amqp://ada:" + secret + "@127.0.0.1:port/"}, []string{"dlq", "list"}},
		{"refused broker credentials", map[string]string{"RABBITMQ_URL": "amqp://guest:" + secret + "@127.0.0.1:5672/"}, []string{"dlq", "list"}},
		{"short JWT secret", map[string]string{"JWT_SECRET": secret}, []string{"token", "--user", "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, tc.vars, tc.args...)
			requireOneLineError(t, res.err)
			if strings.Contains(res.err.Error(), secret) || strings.Contains(res.stderr, secret) {
				t.Fatalf("output shows the secret: err = %q, stderr = %q", res.err, res.stderr)
			}
		})
	}
}
