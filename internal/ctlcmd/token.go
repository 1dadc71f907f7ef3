package ctlcmd

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/careerops/jobs/internal/auth"
)

// maxTokenTTL caps --ttl: a token is a credential, and a year is plenty for a test account.
const maxTokenTTL = 8760 * time.Hour

func tokenCommand() command {
	return command{
		name:     "token",
		synopsis: "--user ID [--ttl 24h] [--admin]",
		short:    "Print a JWT for a user, signed with JWT_SECRET.",
		help: `
Prints only the token (HS256, "sub" = the user id, "exp" = now + TTL), for
"Authorization: Bearer <token>". With --admin the token also carries "admin": true, which
opens the operations pages and API (/api/ops/...). It does not check that the user exists.
Needs JWT_SECRET (at least 32 bytes); not the database.`,
		run: runToken,
	}
}

func runToken(_ context.Context, e *env, c command, args []string) error {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	user := fs.Int64("user", 0, "the user's id (required)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid, at most 8760h")
	admin := fs.Bool("admin", false, "grant the operations pages and API")
	if help, err := c.parseNoArgs(e, fs, args); help || err != nil {
		return err
	}
	switch {
	case *user <= 0:
		return usageErrorf("%s: --user must be a positive user id (see careeropsctl %s --help)", c.name, c.name)
	case *ttl <= 0 || *ttl > maxTokenTTL:
		return usageErrorf("%s: --ttl must be more than 0 and at most %s, got %s", c.name, "8760h", *ttl)
	}
	cfg, err := e.config(needSecret)
	if err != nil {
		return err
	}
	var opts []auth.IssueOption
	if *admin {
		opts = append(opts, auth.AsAdmin())
	}
	token, err := auth.Issue([]byte(cfg.JWTSecret), *user, *ttl, time.Now(), opts...)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, token)
	return err
}
