package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/job"
)

// Lease is a worker's hold on a job, proven by its token.
type Lease struct {
	JobID string
	Token uuid.UUID
}

// ClaimRequest asks to run the job a message names.
type ClaimRequest struct {
	// Envelope and Args are the message's: a job that does not exist yet (another service
	// published its message) is created from them.
	Envelope job.Envelope
	Args     json.RawMessage
	// Redelivered says RabbitMQ delivered the message before, to a consumer whose channel
	// died: the job's holder may be dead, or only its connection.
	Redelivered bool
	// LeaseFor is how long the job stays with this worker before another may take it over.
	LeaseFor time.Duration
	// TraceParent is the message's trace context, kept with a job created from a message.
	TraceParent string
	// Owner is the claiming worker process (see Heartbeat); OwnerDeadAfter is how long a
	// process may go without a heartbeat before its jobs may be taken over.
	Owner          uuid.UUID
	OwnerDeadAfter time.Duration
	// Token, if set, is the lease token to take: asking again with the same token (after a
	// commit whose answer was lost) gets the same lease back. Zero: a new one.
	Token uuid.UUID
}

// Claim moves a job to processing for the holder of the returned lease, until LeaseFor has
// passed. A job that does not exist yet (a message published by another service) is created
// from the message first, for a user who exists (else ErrUnknownUser, or ErrErasedUser for
// one erased), with the time of its
// arrival as its creation time (a publisher's createdAt is not believed) and if the kind's
// Admit lets it (else the job is failed and dead-lettered at once and Claim returns Admit's
// *LimitError). A job may be claimed when it is pending and due, when its lease expired, or
// by a redelivery once its holder stopped sending heartbeats (and OwnerDeadAfter has passed
// since its claim, so that a holder whose first heartbeat is not in yet counts as alive); a
// redelivery of a job whose holder is alive is ErrLeaseHeld (ask again later: the holder may still finish it). Anything
// else is ErrNotClaimable: a duplicate message, to be dropped.
func (r *Runs) Claim(ctx context.Context, req ClaimRequest) (Run, Lease, error) {
	lease := Lease{JobID: req.Envelope.JobID, Token: req.Token}
	if lease.Token == uuid.Nil {
		lease.Token = uuid.New()
	}
	// The usual case, a job that exists and is due, is one statement; the rest is a
	// transaction that may create the job from a foreign message.
	j, err := r.claim(ctx, r.s.pool, lease, req)
	switch {
	case err == nil:
		return j, lease, nil
	case errors.Is(err, ErrLeaseHeld), errors.Is(err, ErrNotClaimable):
		return Run{}, Lease{}, err
	case !errors.Is(err, ErrNotFound):
		return Run{}, Lease{}, fmt.Errorf("jobstore: claim %s: %w", lease.JobID, err)
	}
	var limitErr *LimitError
	err = r.s.outboxTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		j, err = r.claim(ctx, tx, lease, req)
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := r.createFromMessage(ctx, tx, req); err != nil {
			return err
		}
		j, err = r.claim(ctx, tx, lease, req)
		if errors.Is(err, ErrNotFound) {
			return ErrNotClaimable
		}
		return err
	})
	switch {
	case errors.As(err, &limitErr):
		return Run{}, Lease{}, r.refuse(ctx, req, limitErr)
	case errors.Is(err, ErrNotClaimable), errors.Is(err, ErrUnknownUser), errors.Is(err, ErrLeaseHeld):
		return Run{}, Lease{}, err
	case err != nil:
		return Run{}, Lease{}, fmt.Errorf("jobstore: claim %s: %w", lease.JobID, err)
	}
	return j, lease, nil
}

// createFromMessage creates the job a foreign message names, if it does not exist yet (else
// the message is a stale copy: ErrNotClaimable).
func (r *Runs) createFromMessage(ctx context.Context, tx pgx.Tx, req ClaimRequest) error {
	e := req.Envelope
	var jobExists, userExists, erased bool
	err := tx.QueryRow(ctx, r.sql(`SELECT EXISTS (SELECT 1 FROM {t} WHERE job_id = $1),
		EXISTS (SELECT 1 FROM users WHERE id = $2 FOR NO KEY UPDATE),
		EXISTS (SELECT 1 FROM erased_users WHERE user_id = $2)`), e.JobID, e.UserID).Scan(&jobExists, &userExists, &erased)
	switch {
	case err != nil:
		return err
	case jobExists:
		return ErrNotClaimable
	case !userExists && erased:
		return ErrErasedUser
	case !userExists:
		return ErrUnknownUser
	}
	if r.k.Admit != nil {
		if err := r.k.Admit(ctx, tx, e.UserID); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, r.k.Table.Insert, e.JobID, e.UserID, req.Args, req.TraceParent, r.k.Name); err != nil {
		return fmt.Errorf("create job from message: %w", err)
	}
	return nil
}

// refuse stores a foreign message's job as failed (Admit refused it), announces it and
// dead-letters the message, so that an operator may requeue it. It returns limitErr.
func (r *Runs) refuse(ctx context.Context, req ClaimRequest, limitErr *LimitError) error {
	e := req.Envelope
	msg := job.SafeText("refused: "+limitErr.Error(), job.MaxErrorBytes)
	err := r.s.outboxTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, r.k.Table.Insert, e.JobID, e.UserID, req.Args, req.TraceParent, r.k.Name)
		if err != nil || tag.RowsAffected() == 0 { // a copy got there first
			return err
		}
		j, err := scanRun(tx.QueryRow(ctx, r.sql(`
			UPDATE {t} SET status = 'failed', error_message = $2, completed_at = now(), updated_at = now()
			WHERE job_id = $1 RETURNING {cols}`), e.JobID, msg))
		if err != nil {
			return err
		}
		return r.failedByStore(ctx, tx, j, job.ReasonQuotaExceeded, msg)
	})
	if err != nil {
		return fmt.Errorf("jobstore: refuse %s over the quota: %w", e.JobID, err)
	}
	return limitErr
}

// claimSQL takes the lease of a claimable job: with {job}, {token}, {secs}, {owner},
// {redelivered} and {deadAfter} the job's and its claim's values (parameters, or the columns
// of a batch of claims, {from}).
//
// The status is tested in a CASE, not in ORs of `status = …`: from those the planner may
// find the row through the open-jobs index (its predicate is implied) instead of by its id,
// and with statistics from before a burst (no job open, as far as they know) it does, reading
// every waiting job for each claim: a deep queue then drains the slower the deeper it is.
const claimSQL = `
	UPDATE {t} AS j
	SET status = 'processing', attempts = attempts + CASE WHEN lease_token = {token} THEN 0 ELSE 1 END,
	    lease_token = {token}, lease_owner = nullif({owner}, '00000000-0000-0000-0000-000000000000'::uuid),
	    lease_expires_at = now() + make_interval(secs => {secs}), run_after = NULL,
	    started_at = now(), updated_at = now()
	{from}
	WHERE job_id = {job} AND CASE status
	    WHEN 'pending' THEN run_after IS NULL OR run_after <= now()
	    WHEN 'processing' THEN lease_token = {token} OR lease_expires_at < now() OR ({redelivered}
	        -- a holder is alive for deadAfter after its claim, seen yet or not (a new worker's first heartbeat)
	        AND j.started_at < now() - make_interval(secs => {deadAfter}) AND NOT EXISTS (
	        SELECT 1 FROM worker_processes AS p
	        WHERE p.id = j.lease_owner AND p.seen_at > now() - make_interval(secs => {deadAfter})))
	    ELSE false END`

// claim takes the lease of a claimable job; a redelivery that finds the job held by a live
// process is ErrLeaseHeld.
func (r *Runs) claim(ctx context.Context, db Querier, lease Lease, req ClaimRequest) (Run, error) {
	j, err := scanRun(db.QueryRow(ctx, r.sql(strings.NewReplacer("{from}", "", "{job}", "$1", "{token}", "$2", "{secs}", "$3",
		"{redelivered}", "$4", "{owner}", "$5", "{deadAfter}", "$6").Replace(claimSQL)+` RETURNING {cols}`),
		lease.JobID, lease.Token, req.LeaseFor.Seconds(), req.Redelivered, req.Owner, req.OwnerDeadAfter.Seconds()))
	if !errors.Is(err, ErrNotFound) || !req.Redelivered {
		return j, err
	}
	var processing bool
	if err := db.QueryRow(ctx, r.sql(`SELECT status = 'processing' FROM {t} WHERE job_id = $1`), lease.JobID).Scan(&processing); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return Run{}, ErrNotFound
		}
		return Run{}, err
	}
	if processing {
		return Run{}, ErrLeaseHeld
	}
	return Run{}, ErrNotClaimable
}

// Requeue gives a failed job a fresh attempt budget and sends it to its queue again (an
// operator's `careeropsctl dlq requeue`). A job that is not failed is ErrNotInDLQState.
func (r *Runs) Requeue(ctx context.Context, jobID string, headers map[string]string) (Run, error) {
	j, err := r.apply(ctx, transition{
		update: `
			UPDATE {t}
			SET status = 'pending', attempts_at_requeue = attempts, error_message = NULL,
			    completed_at = NULL, run_after = NULL, updated_at = now()
			WHERE job_id = $1 AND status = 'failed'`,
		args: []any{jobID},
		notFound: func(ctx context.Context, tx pgx.Tx) error {
			if _, err := scanRun(tx.QueryRow(ctx, r.sql(`SELECT {cols} FROM {t} WHERE job_id = $1`), jobID)); err != nil {
				return err
			}
			return ErrNotInDLQState
		},
		then: func(ctx context.Context, tx pgx.Tx, j Run) error {
			// An operator's requeue runs in careeropsctl, which has no relay: wake the others.
			if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, database.NotifyChannel); err != nil {
				return err
			}
			return r.enqueue(ctx, tx, j, headers, time.Time{})
		},
	})
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrNotInDLQState) {
		return Run{}, fmt.Errorf("jobstore: requeue %s: %w", jobID, err)
	}
	return j, err
}

// ReapExpired finds jobs whose lease expired more than grace ago — their worker died and
// RabbitMQ did not redeliver them, e.g. because it dead-lettered the message at its delivery
// limit — and sends them to their queue again, or fails them once maxAttempts is spent. It
// returns how many jobs it requeued and failed.
func (r *Runs) ReapExpired(ctx context.Context, grace time.Duration, maxAttempts int) (requeued, failed int, err error) {
	filter := "true"
	if r.k.Table.Filter != "" {
		filter = r.k.Table.Filter
	}
	err = r.s.outboxTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, r.sql(`
			SELECT {cols} FROM {t}
			WHERE status = 'processing' AND lease_expires_at < now() - make_interval(secs => $1) AND `+filter+`
			ORDER BY lease_expires_at LIMIT 100
			FOR UPDATE SKIP LOCKED`), grace.Seconds())
		if err != nil {
			return err
		}
		runs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Run, error) { return scanRun(row) })
		if err != nil {
			return err
		}
		for _, j := range runs {
			if j.AttemptsSince >= maxAttempts {
				failed++
				err = r.failReaped(ctx, tx, j)
			} else {
				requeued++
				err = r.requeueReaped(ctx, tx, j)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("jobstore: reap expired leases: %w", err)
	}
	return requeued, failed, nil
}

func (r *Runs) requeueReaped(ctx context.Context, tx pgx.Tx, j Run) error {
	if _, err := tx.Exec(ctx, r.sql(`
		UPDATE {t} SET status = 'pending', lease_token = NULL, lease_expires_at = NULL, updated_at = now()
		WHERE job_id = $1`), j.ID); err != nil {
		return err
	}
	return r.enqueue(ctx, tx, j, nil, time.Time{})
}

// failReaped fails a job whose workers kept dying with it: announced and dead-lettered like
// any job that spent its attempts, so that it can be requeued from the DLQ.
func (r *Runs) failReaped(ctx context.Context, tx pgx.Tx, j Run) error {
	msg := fmt.Sprintf("worker lost the job %d times (crashed or timed out)", j.AttemptsSince)
	j, err := scanRun(tx.QueryRow(ctx, r.sql(`
		UPDATE {t}
		SET status = 'failed', error_message = $2, lease_token = NULL, lease_expires_at = NULL,
		    completed_at = now(), updated_at = now()
		WHERE job_id = $1 RETURNING {cols}`), j.ID, msg))
	if err != nil {
		return err
	}
	return r.failedByStore(ctx, tx, j, job.ReasonAttemptsExhausted, msg)
}
