// Package riverpeer is the bench's River peer (docs/benchmarks.md, "River side by side"): the
// same job as our api and worker, done the way a user who picked River instead would do it —
// a Fiber handler with the api's request validation (httpapi.ValidateCreate) and auth (the
// JWT of package auth, the user checked to exist and remembered for a minute) that inserts a
// River job, and a River worker that asks the LLM for the letter (internal/llm, streaming,
// the deltas dropped: the peer has no progress events) and stores it. It runs on its own
// PostgreSQL database, migrated with rivermigrate. Not product code: tools module only.
package riverpeer

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/careerops/jobs/internal/job"
)

// Args is a cover-letter job's arguments. A request with an Idempotency-Key is unique per
// user and key (River's unique jobs): a repeat gets the first job.
type Args struct {
	UserID         int64    `json:"user_id" river:"unique"`
	IdempotencyKey string   `json:"idempotency_key,omitempty" river:"unique"`
	JobDescription string   `json:"job_description"`
	CVText         string   `json:"cv_text"`
	Tone           job.Tone `json:"tone"`
}

// Kind names the job kind in river_job.
func (Args) Kind() string { return "cover_letter" }

// InsertOpts makes a job with an Idempotency-Key unique by its user and key.
func (a Args) InsertOpts() river.InsertOpts {
	if a.IdempotencyKey == "" {
		return river.InsertOpts{}
	}
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// schema is the peer's own tables beside River's: the users tokens speak for, and the letters.
const schema = `
CREATE TABLE IF NOT EXISTS users (
	id         bigint PRIMARY KEY,
	email      text NOT NULL UNIQUE,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS cover_letters (
	job_id            bigint PRIMARY KEY,
	user_id           bigint NOT NULL REFERENCES users (id),
	letter            text NOT NULL,
	prompt_tokens     integer NOT NULL,
	completion_tokens integer NOT NULL,
	created_at        timestamptz NOT NULL DEFAULT now()
);`

// Migrate brings River's schema (rivermigrate) and the peer's tables up to date.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	if _, err := pool.Exec(ctx, schema); err != nil {
		return fmt.Errorf("peer tables: %w", err)
	}
	return nil
}

// AddUser adds a user with the id it has in our database, so that one token serves both.
func AddUser(ctx context.Context, pool *pgxpool.Pool, id int64, email string) error {
	_, err := pool.Exec(ctx, `INSERT INTO users (id, email) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, id, email)
	return err
}

// Reset empties the jobs and the letters between bench runs.
func Reset(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `TRUNCATE river_job, cover_letters`)
	return err
}

// newClient is a River client on pool; cfg nil for an insert-only one.
func newClient(pool *pgxpool.Pool, cfg *river.Config) (*river.Client[pgx.Tx], error) {
	if cfg == nil {
		cfg = &river.Config{}
	}
	return river.NewClient(riverpgxv5.New(pool), cfg)
}
