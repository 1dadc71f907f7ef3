package ctlcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/careerops/jobs/internal/database"
)

func migrateUpCommand() command {
	return command{
		name:  "migrate up",
		short: "Create the database if needed and apply every pending schema migration.",
		help: `
Prints one line per migration applied ("applied 00001_init.sql (12ms)"), or "schema is up to
date". Safe to run again, and from several processes at once (an advisory lock serialises
them). Needs DATABASE_URL.`,
		run: runMigrateUp,
	}
}

func runMigrateUp(ctx context.Context, e *env, c command, args []string) error {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	if help, err := c.parseNoArgs(e, fs, args); help || err != nil {
		return err
	}
	cfg, err := e.config(needDatabase)
	if err != nil {
		return err
	}

	// Creating the database needs the CREATEDB privilege and a connection to the "postgres"
	// database, which a managed database's role may lack while its own database exists: only
	// fail on that if migrating fails too.
	ensureErr := database.EnsureDatabase(ctx, cfg.DatabaseURL)
	results, err := database.Migrate(ctx, cfg.DatabaseURL)
	applied := 0
	for _, r := range results {
		if r == nil || r.Error != nil || r.Source == nil {
			continue
		}
		applied++
		if _, werr := fmt.Fprintf(e.stdout, "applied %s (%dms)\n", path.Base(r.Source.Path), r.Duration.Milliseconds()); werr != nil {
			return werr
		}
	}
	var pgErr *pgconn.PgError
	if err != nil && ensureErr != nil && errors.As(err, &pgErr) && pgErr.Code == "3D000" { // invalid_catalog_name
		return fmt.Errorf("migrate up: the database does not exist and creating it failed: %w", ensureErr)
	}
	if err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	if applied == 0 {
		_, err = fmt.Fprintln(e.stdout, "schema is up to date")
	}
	return err
}
