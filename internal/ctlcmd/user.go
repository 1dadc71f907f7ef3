package ctlcmd

import (
	"context"
	"flag"
	"fmt"
	"net/mail"

	"github.com/careerops/jobs/internal/jobstore"
)

func userAddCommand() command {
	return command{
		name:     "user add",
		synopsis: "--email EMAIL",
		short:    "Create a user and print its id.",
		help: `
Prints only the new user's id, so a script can capture it:

  ID=$(careeropsctl user add --email ada@example.com)

EMAIL is a bare address (no display name) and must not belong to another user. Needs
DATABASE_URL.`,
		run: runUserAdd,
	}
}

func runUserAdd(ctx context.Context, e *env, c command, args []string) error {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	email := fs.String("email", "", "the user's email address (required)")
	if help, err := c.parseNoArgs(e, fs, args); help || err != nil {
		return err
	}
	if *email == "" {
		return usageErrorf("%s: --email is required (see careeropsctl %s --help)", c.name, c.name)
	}
	if err := validEmail(*email); err != nil {
		return usageErrorf("%s: %v", c.name, err)
	}
	pool, err := e.pool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	id, err := jobstore.New(pool).AddUser(ctx, *email)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, id)
	return err
}

// validEmail accepts a bare RFC 5322 address such as ada@example.com, not "Ada <ada@…>".
func validEmail(s string) error {
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return fmt.Errorf("--email %q is not a bare email address such as ada@example.com", s)
	}
	return nil
}
