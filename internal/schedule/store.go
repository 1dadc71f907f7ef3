package schedule

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/jobstore"
)

// lockSpace is the first key of the advisory locks that order each task's slots across
// replicas (the second is the task's hash).
const lockSpace = 727_300

// SystemUser is the id of the user scheduled jobs run as (job.SystemUserEmail), and other
// system work (a usage refresh an operator asks for).
func SystemUser(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var id int64
	err := pool.QueryRow(ctx, `SELECT id FROM users WHERE email = $1`, job.SystemUserEmail).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("schedule: no system user %s: run the migrations (careeropsctl migrate up)", job.SystemUserEmail)
	}
	if err != nil {
		return 0, fmt.Errorf("schedule: system user: %w", err)
	}
	return id, nil
}

// register records the tasks as this scheduler runs them, for /ops and careeropsctl
// schedules, and returns PostgreSQL's now().
func register(ctx context.Context, pool *pgxpool.Pool, tasks []Task) (time.Time, error) {
	var now time.Time
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, t := range tasks {
			if _, err := tx.Exec(ctx, `
				INSERT INTO schedules (task, kind, cron) VALUES ($1, $2, $3)
				ON CONFLICT (task) DO UPDATE SET kind = excluded.kind, cron = excluded.cron, updated_at = now()`,
				t.Task, t.Kind.Name, t.Cron); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, `SELECT now()`).Scan(&now)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("schedule: register tasks: %w", err)
	}
	return now, nil
}

// tick runs task t's due slot, if one is, in one transaction: the slot's row, and the slot's
// job if it is enqueued. It returns what it recorded (a zero Decision: nothing, or another
// replica did) and the time until the task's next slot, both by PostgreSQL's clock.
func tick(ctx context.Context, pool *pgxpool.Pool, t Task, since time.Time, user int64, owner string) (Decision, time.Duration, error) {
	var (
		done      Decision
		untilNext time.Duration
	)
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// One replica at a time per task: the last slot read below is the last recorded.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockSpace, t.Task); err != nil {
			return err
		}
		var (
			now     time.Time
			last    *time.Time
			lastJob string
		)
		if err := tx.QueryRow(ctx, `
			SELECT statement_timestamp(), (SELECT max(slot) FROM schedule_runs WHERE task = $1),
			       coalesce((SELECT job_id FROM schedule_runs WHERE task = $1 AND outcome = 'enqueued' ORDER BY slot DESC LIMIT 1), '')`,
			t.Task).Scan(&now, &last, &lastJob); err != nil {
			return err
		}
		untilNext = untilSlot(t.when.Next(now), now)
		open, err := jobOpen(ctx, tx, t.Kind.Table, lastJob)
		if err != nil {
			return err
		}
		d, err := decide(t.when, deref(last), since, now, open)
		if errors.Is(err, errNoSlot) {
			return nil
		}
		if err != nil {
			return err
		}
		blocking := ""
		if d.Outcome == Skipped {
			blocking = lastJob
		}
		return record(ctx, tx, t, d, blocking, user, owner, &done)
	})
	if err != nil {
		return Decision{}, 0, fmt.Errorf("schedule: task %s: %w", t.Task, err)
	}
	return done, untilNext, nil
}

// record inserts the slot's row and, if this INSERT wins and the slot is enqueued, its job;
// done is set to d when it did.
func record(ctx context.Context, tx pgx.Tx, t Task, d Decision, blocking string, user int64, owner string, done *Decision) error {
	id := JobID(t.Task, d.Slot)
	jobID := id
	if d.Outcome == Skipped {
		jobID = blocking
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO schedule_runs (task, slot, outcome, job_id, scheduled_by) VALUES ($1, $2, $3, nullif($4, ''), $5)
		ON CONFLICT (task, slot) DO NOTHING`, t.Task, d.Slot, d.Outcome, jobID, owner)
	if err != nil || tag.RowsAffected() == 0 {
		return err // another replica recorded the slot
	}
	*done = d
	if d.Outcome == Skipped {
		return nil
	}
	_, err = jobstore.Enqueue(ctx, tx, t.Kind, jobstore.NewRun{ID: id, UserID: user, Args: t.Args})
	return err
}

// jobOpen reports whether the job id ("": none) of the kind kept in table is pending or
// processing; a job that is gone (retention) is finished.
func jobOpen(ctx context.Context, tx pgx.Tx, table jobstore.Table, id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	var open bool
	err := tx.QueryRow(ctx, `SELECT status IN ('pending', 'processing') FROM `+pgx.Identifier{table.Name}.Sanitize()+
		` WHERE job_id = $1`, id).Scan(&open)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return open, err
}

// deref is *t, the zero time for nil.
func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// untilSlot is the time from now to next, a slot (zero: none within five years: a day, then
// look again).
func untilSlot(next, now time.Time) time.Duration {
	if next.IsZero() {
		return 24 * time.Hour
	}
	return next.Sub(now)
}
