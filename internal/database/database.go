// Package database connects to PostgreSQL and owns the schema: embedded, versioned goose
// migrations applied by `careeropsctl migrate up`.
package database

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jackc/pgxlisten"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Connect opens a pool of at most maxConns connections to url (0: pgx's default) and checks
// that the database answers. A tracer, if not nil, traces every query.
func Connect(ctx context.Context, url string, maxConns int32, tracer pgx.QueryTracer) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database: parse DATABASE_URL: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database: open pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database: connect to %s: %w", redact(cfg.ConnConfig), err)
	}
	return pool, nil
}

// redact names the server and database without the password.
func redact(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s:%d/%s", c.Host, c.Port, c.Database)
}

// Migrate applies every pending migration. It takes a PostgreSQL advisory lock, so several
// processes may run it at once; running it twice is harmless.
func Migrate(ctx context.Context, url string) ([]*goose.MigrationResult, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database: parse DATABASE_URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("database: migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("database: migration lock: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("database: migrations: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return results, fmt.Errorf("database: migrate %s: %w", redact(cfg), err)
	}
	return results, nil
}

// EnsureDatabase creates the database named in url if it does not exist yet, connecting to the
// server's "postgres" database to do so.
func EnsureDatabase(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("database: parse DATABASE_URL: %w", err)
	}
	name := cfg.Database
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("database: connect to %s: %w", redact(cfg), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database
		return nil
	}
	if err != nil {
		return fmt.Errorf("database: create %q: %w", name, err)
	}
	return nil
}

// NotifyChannel is the LISTEN channel on which the outbox announces new rows.
const NotifyChannel = "outbox_messages"

// MigrationsVersion identifies the embedded schema: a digest of every migration file. Test
// helpers use it to name a migrated template database.
func MigrationsVersion() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations, "migrations", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := migrations.ReadFile(path)
		if err != nil {
			return err
		}
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("database: read migrations: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// NewListener returns a pgxlisten.Listener on its own connection taken from pool (a LISTENing
// connection never goes back to the pool), reconnecting after reconnectDelay.
func NewListener(pool *pgxpool.Pool, reconnectDelay time.Duration, logError func(context.Context, error)) *pgxlisten.Listener {
	return &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			c, err := pool.Acquire(ctx)
			if err != nil {
				return nil, err
			}
			return c.Hijack(), nil
		},
		LogError:       logError,
		ReconnectDelay: reconnectDelay,
	}
}

// JobCancelledChannel is the LISTEN channel on which a cancelled job's id is announced, so the
// worker running it can stop.
const JobCancelledChannel = "cover_letter_job_cancelled"

// UserErasedChannel is the LISTEN channel on which an erased user's id is announced (DELETE
// /api/me), so that every api replica forgets it at once: the user's tokens stop working
// everywhere, not a cache's lifetime later.
const UserErasedChannel = "user_erased"
