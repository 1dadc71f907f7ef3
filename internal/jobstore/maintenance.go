package jobstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/job"
)

// Requeue gives a failed job a fresh attempt budget and sends it to the generate queue again
// (an operator's `careeropsctl dlq requeue`). A job that is not failed is ErrNotInDLQState.
func (s *Store) Requeue(ctx context.Context, jobID string, headers map[string]string) (Job, error) {
	j, err := s.apply(ctx, transition{
		update: `
			UPDATE cover_letter_jobs
			SET status = 'pending', attempts_at_requeue = attempts, error_message = NULL,
			    completed_at = NULL, run_after = NULL, updated_at = now()
			WHERE job_id = $1 AND status = 'failed'`,
		args: []any{jobID},
		notFound: func(tx pgx.Tx) error {
			if _, err := scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM cover_letter_jobs WHERE job_id = $1`, jobID)); err != nil {
				return err
			}
			return ErrNotInDLQState
		},
		then: func(tx pgx.Tx, j Job) error {
			// An operator's requeue runs in careeropsctl, which has no relay: wake the others.
			if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, database.NotifyChannel); err != nil {
				return err
			}
			return enqueueGenerate(ctx, tx, j, headers, time.Time{})
		},
	})
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrNotInDLQState) {
		return Job{}, fmt.Errorf("jobstore: requeue %s: %w", jobID, err)
	}
	return j, err
}

// failReaped fails a job whose workers kept dying with it: announced and dead-lettered like
// any job that spent its attempts, so that it can be requeued from the DLQ.
func failReaped(ctx context.Context, tx pgx.Tx, j Job) error {
	msg := fmt.Sprintf("worker lost the job %d times (crashed or timed out)", j.AttemptsSince)
	if _, err := tx.Exec(ctx, `
		UPDATE cover_letter_jobs
		SET status = 'failed', error_message = $2, lease_token = NULL, lease_expires_at = NULL,
		    completed_at = now(), updated_at = now()
		WHERE job_id = $1`, j.ID, msg); err != nil {
		return err
	}
	j.Status, j.Error = job.StatusFailed, msg
	now := time.Now()
	j.CompletedAt = &now
	return enqueueFailedByStore(ctx, tx, j, job.ReasonAttemptsExhausted, msg)
}

// ReapExpired finds jobs whose lease expired more than grace ago — their worker died and
// RabbitMQ did not redeliver them, e.g. because it dead-lettered the message at its delivery
// limit — and sends them to the generate queue again, or fails them once maxAttempts is spent.
// It returns how many jobs it requeued and failed.
func (s *Store) ReapExpired(ctx context.Context, grace time.Duration, maxAttempts int) (requeued, failed int, err error) {
	err = s.outboxTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT `+jobColumns+` FROM cover_letter_jobs
			WHERE status = 'processing' AND lease_expires_at < now() - make_interval(secs => $1)
			ORDER BY lease_expires_at LIMIT 100
			FOR UPDATE SKIP LOCKED`, grace.Seconds())
		if err != nil {
			return err
		}
		jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) { return scanJob(r) })
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if j.AttemptsSince >= maxAttempts {
				if err := failReaped(ctx, tx, j); err != nil {
					return err
				}
				failed++
				continue
			}
			if _, err := tx.Exec(ctx, `
				UPDATE cover_letter_jobs
				SET status = 'pending', lease_token = NULL, lease_expires_at = NULL, updated_at = now()
				WHERE job_id = $1`, j.ID); err != nil {
				return err
			}
			if err := enqueueGenerate(ctx, tx, j, nil, time.Time{}); err != nil {
				return err
			}
			requeued++
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("jobstore: reap expired leases: %w", err)
	}
	return requeued, failed, nil
}
