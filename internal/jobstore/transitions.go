package jobstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/outbox"
)

// NewJob is a job as a client submits it.
type NewJob struct {
	ID             string
	UserID         int64
	JobDescription string
	CVText         string
	Tone           job.Tone
	// IdempotencyKey, when set, makes a replay of the same request return the first job.
	IdempotencyKey string
	// RequestHash identifies the request body, to tell a replay from a reuse of the key.
	RequestHash string
	// Headers travel with the message (trace context).
	Headers map[string]string
	// Limits caps how much the user may ask for; zero values mean no limit.
	Limits Limits
}

// Limits are a user's quotas, enforced across every api replica because they are counted in
// the database under a lock on the user's row.
type Limits struct {
	// JobsPerMinute caps the jobs a user may create in any 60 seconds.
	JobsPerMinute int
	// TokensPerDay caps the LLM tokens (input + output) of a user's jobs completed since
	// midnight UTC; once reached, new jobs wait for the next day.
	TokensPerDay int
}

// counted says whether a create must count the user's usage.
func (l Limits) counted() bool { return l.JobsPerMinute > 0 || l.TokensPerDay > 0 }

// LimitError is a refused job: the user is over a limit until RetryAfter has passed.
type LimitError struct {
	Limit      string // "jobs_per_minute" or "tokens_per_day"
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("over the %s limit; retry in %s", e.Limit, e.RetryAfter.Round(time.Second))
}

// Create stores a new pending job and, in the same transaction, its message for the generate
// queue. With an idempotency key already used by the user it returns the existing job and
// created=false, or ErrIdempotencyConflict if the request differs.
//
// Only a create with a limit to count locks the user's row (so that the count is exact across
// replicas); without limits a user's creations run side by side, and two racing requests with
// one key are told apart by the key's unique index.
func (s *Store) Create(ctx context.Context, n NewJob) (j Job, created bool, err error) {
	var limitErr *LimitError
	j, created, err = s.create(ctx, n)
	if isIdempotencyRace(err) { // another request with the key committed first: answer with its job
		j, created, err = s.create(ctx, n)
	}
	switch {
	case err == nil, errors.Is(err, ErrIdempotencyConflict), errors.Is(err, ErrUnknownUser), errors.As(err, &limitErr):
		return j, created, err
	default:
		return j, created, fmt.Errorf("jobstore: create job: %w", err)
	}
}

func (s *Store) create(ctx context.Context, n NewJob) (j Job, created bool, err error) {
	var key any
	if n.IdempotencyKey != "" {
		key = n.IdempotencyKey
	}
	counted := n.Limits.counted()
	err = s.outboxTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if counted { // one counted creation at a time per user: the limits below count exactly
			if err := lockUser(ctx, tx, n.UserID); err != nil {
				return err
			}
		}
		if n.IdempotencyKey != "" { // a replay answers with the first job, limits or not
			var hash string
			j, err = scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+`, coalesce(request_hash, '') FROM cover_letter_jobs
				WHERE user_id = $1 AND idempotency_key = $2`, n.UserID, n.IdempotencyKey), &hash)
			switch {
			case err == nil && hash != n.RequestHash:
				return ErrIdempotencyConflict
			case err == nil:
				return nil
			case !errors.Is(err, ErrNotFound):
				return err
			}
		}
		if counted {
			if err := checkLimits(ctx, tx, n.UserID, n.Limits); err != nil {
				return err
			}
		}
		j, err = scanJob(tx.QueryRow(ctx, `
			INSERT INTO cover_letter_jobs (job_id, user_id, job_description, cv_text, tone, idempotency_key, request_hash, traceparent)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			RETURNING `+jobColumns,
			n.ID, n.UserID, n.JobDescription, n.CVText, n.Tone, key, n.RequestHash, n.Headers["traceparent"]))
		if isForeignKey(err, "cover_letter_jobs_user_id_fkey") {
			return ErrUnknownUser
		}
		if err != nil {
			return err
		}
		created = true
		m, err := coverLetterMessage(j, n.Headers)
		if err != nil {
			return err
		}
		return outbox.Insert(ctx, tx, m, time.Time{})
	})
	return j, created, err
}

// lockUser takes the user's row lock for a counted creation; ErrUnknownUser if there is none.
func lockUser(ctx context.Context, tx pgx.Tx, userID int64) error {
	var exists bool
	err := tx.QueryRow(ctx, `SELECT true FROM users WHERE id = $1 FOR NO KEY UPDATE`, userID).Scan(&exists)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrUnknownUser
	}
	return err
}

// isIdempotencyRace reports an insert that lost to a concurrent request with the same key.
func isIdempotencyRace(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "cover_letter_jobs_idempotency_idx"
}

// isForeignKey reports a violation of the named foreign key ("": of any).
func isForeignKey(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503" && (constraint == "" || pgErr.ConstraintName == constraint)
}

// The UTC day's start and the next's, and the LLM tokens of the jobs completed since the
// start (USER_TOKENS_PER_DAY counts these), in SQL.
const (
	todaySQL       = `(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')`
	tomorrowSQL    = `((date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC')`
	tokensTodaySQL = `coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)) FILTER (WHERE completed_at >= ` + todaySQL + `), 0)`
)

// TokensToday are the LLM tokens of userID's cover letters completed this UTC day, what
// USER_TOKENS_PER_DAY caps, and when the day ends.
func (s *Store) TokensToday(ctx context.Context, userID int64) (tokens int64, dayEnds time.Time, err error) {
	err = s.pool.QueryRow(ctx, `SELECT `+tokensTodaySQL+`, `+tomorrowSQL+`
		FROM cover_letter_jobs WHERE user_id = $1 AND completed_at >= `+todaySQL, userID).Scan(&tokens, &dayEnds)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("jobstore: tokens today: %w", err)
	}
	return tokens, dayEnds, nil
}

// checkLimits refuses a new job when the user is over a limit.
func checkLimits(ctx context.Context, tx pgx.Tx, userID int64, l Limits) error {
	if !l.counted() {
		return nil
	}
	var (
		recent        int
		oldestRecent  *time.Time
		tokensToday   int64
		now, midnight time.Time
	)
	err := tx.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE created_at > now() - interval '1 minute'),
		       min(created_at) FILTER (WHERE created_at > now() - interval '1 minute'),
		       `+tokensTodaySQL+`, now(), `+tomorrowSQL+`
		FROM cover_letter_jobs
		WHERE user_id = $1 AND (created_at > now() - interval '1 minute' OR completed_at >= `+todaySQL+`)`, userID).
		Scan(&recent, &oldestRecent, &tokensToday, &now, &midnight)
	if err != nil {
		return fmt.Errorf("count usage: %w", err)
	}
	if l.TokensPerDay > 0 && tokensToday >= int64(l.TokensPerDay) {
		return &LimitError{Limit: "tokens_per_day", RetryAfter: midnight.Sub(now)}
	}
	if l.JobsPerMinute > 0 && recent >= l.JobsPerMinute && oldestRecent != nil {
		return &LimitError{Limit: "jobs_per_minute", RetryAfter: max(oldestRecent.Add(time.Minute).Sub(now), time.Second)}
	}
	return nil
}

// withHeaders copies headers and adds key-value pairs.
func withHeaders(headers map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(headers)+len(kv)/2)
	for k, v := range headers {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// Heartbeat records that the worker process owner is alive; name says which it is (its
// host name, say). Send one every few seconds: jobs of a process silent for longer than a
// claim's OwnerDeadAfter may be taken over by a redelivery.
func (s *Store) Heartbeat(ctx context.Context, owner uuid.UUID, name string) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO worker_processes (id, name) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET seen_at = now()`, owner, job.SafeText(name, 255))
	if err != nil {
		return fmt.Errorf("jobstore: heartbeat: %w", err)
	}
	return nil
}

// Forget removes a process that stops, and processes silent for a day.
func (s *Store) Forget(ctx context.Context, owner uuid.UUID) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM worker_processes WHERE id = $1 OR seen_at < now() - interval '1 day'`, owner)
	if err != nil {
		return fmt.Errorf("jobstore: forget process: %w", err)
	}
	return nil
}
