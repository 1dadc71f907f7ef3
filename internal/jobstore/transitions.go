package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/database"
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
	err = s.outboxTx(ctx, func(tx pgx.Tx) error {
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
		return enqueueGenerate(ctx, tx, j, n.Headers, time.Time{})
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

// isForeignKey reports a violation of the named foreign key.
func isForeignKey(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503" && pgErr.ConstraintName == constraint
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
		       coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0))
		                FILTER (WHERE completed_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), 0),
		       now(), (date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC'
		FROM cover_letter_jobs
		WHERE user_id = $1 AND (created_at > now() - interval '1 minute'
		      OR completed_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')`, userID).
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

// enqueueGenerate writes the job's message for the generate queue to the outbox, to be sent
// at at (zero: now).
func enqueueGenerate(ctx context.Context, tx pgx.Tx, j Job, headers map[string]string, at time.Time) error {
	m, err := generateOutboxMessage(j, headers, at)
	if err != nil {
		return err
	}
	return outbox.Insert(ctx, tx, m, at)
}

// generateOutboxMessage is the job's message for the generate queue, due at at (zero: now).
func generateOutboxMessage(j Job, headers map[string]string, at time.Time) (broker.Message, error) {
	body, err := json.Marshal(generateMessage(j))
	if err != nil {
		return broker.Message{}, fmt.Errorf("encode message: %w", err)
	}
	due := at
	if due.IsZero() {
		due = time.Now()
	}
	return broker.Message{
		RoutingKey: job.QueueGenerate,
		MessageID:  j.ID + "/" + strconv.Itoa(j.Attempts),
		Headers:    withHeaders(headers, job.HeaderJobID, j.ID, job.HeaderDueAt, due.UTC().Format(time.RFC3339Nano)),
		Body:       body,
	}, nil
}

// generateMessage is the job's message for the generate queue.
func generateMessage(j Job) job.GenerateMessage {
	return job.GenerateMessage{
		JobID:          j.ID,
		UserID:         j.UserID,
		JobDescription: j.JobDescription,
		CVText:         j.CVText,
		Tone:           j.Tone,
		CreatedAt:      j.CreatedAt,
		RetryCount:     j.Attempts,
	}
}

// enqueueFailed announces the failed job j on the completed queue and puts its dead letter
// dl on the DLQ, so that an operator may requeue it.
func enqueueFailed(ctx context.Context, tx pgx.Tx, j Job, headers map[string]string, dl DeadLetter) error {
	if err := enqueueCompleted(ctx, tx, j, headers); err != nil {
		return err
	}
	return outbox.Insert(ctx, tx, dl.message(j.ID+"/dead"), time.Time{})
}

// enqueueFailedByStore is enqueueFailed for a job the store fails itself, with no worker's message
// to dead-letter: its dead letter carries the job's generate message, reason and errMsg.
func enqueueFailedByStore(ctx context.Context, tx pgx.Tx, j Job, reason, errMsg string) error {
	body, err := json.Marshal(generateMessage(j))
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	dl := DeadLetter{Body: body, Headers: map[string]string{job.HeaderJobID: j.ID}, Reason: reason, Error: errMsg}
	return enqueueFailed(ctx, tx, j, nil, dl)
}

// enqueueCompleted writes the job's final-result message to the outbox.
func enqueueCompleted(ctx context.Context, tx pgx.Tx, j Job, headers map[string]string) error {
	msg := job.CompletedMessage{JobID: j.ID, UserID: j.UserID, Status: j.Status, CoverLetter: j.CoverLetter, Error: j.Error}
	if j.CompletedAt != nil {
		msg.CompletedAt = *j.CompletedAt
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	return outbox.Insert(ctx, tx, broker.Message{
		RoutingKey: job.QueueCompleted,
		MessageID:  j.ID + "/" + string(j.Status),
		Headers:    withHeaders(headers, job.HeaderJobID, j.ID),
		Body:       body,
	}, time.Time{})
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

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Lease is a worker's hold on a job, proven by its token.
type Lease struct {
	JobID string
	Token uuid.UUID
}

// ClaimRequest asks to run the job a generate message names.
type ClaimRequest struct {
	Message job.GenerateMessage
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
	// Limits is the quota a job created from a foreign message counts against.
	Limits Limits
	// Token, if set, is the lease token to take: asking again with the same token (after a
	// commit whose answer was lost) gets the same lease back. Zero: a new one.
	Token uuid.UUID
}

// Claim moves a job to processing for the holder of the returned lease, until LeaseFor has
// passed. A job that does not exist yet (a message published by another service) is created
// from the message first, for a user who exists (else ErrUnknownUser), with the time of its
// arrival as its creation time (a publisher's createdAt is not believed) and within the
// user's quota (else the job is failed and dead-lettered at once and Claim returns the
// *LimitError). A job may be claimed when it is pending and due, when its lease expired, or by
// a redelivery once its holder stopped sending heartbeats; a redelivery of a job whose holder
// is alive is ErrLeaseHeld (ask again later: the holder may still finish it). Anything else
// is ErrNotClaimable: a duplicate message, to be dropped.
func (s *Store) Claim(ctx context.Context, r ClaimRequest) (Job, Lease, error) {
	lease := Lease{JobID: r.Message.JobID, Token: r.Token}
	if lease.Token == uuid.Nil {
		lease.Token = uuid.New()
	}
	// The usual case, a job that exists and is due, is one statement; the rest is a
	// transaction that may create the job from a foreign message.
	j, err := claim(ctx, s.pool, lease, r)
	switch {
	case err == nil:
		return j, lease, nil
	case errors.Is(err, ErrLeaseHeld), errors.Is(err, ErrNotClaimable):
		return Job{}, Lease{}, err
	case !errors.Is(err, ErrNotFound):
		return Job{}, Lease{}, fmt.Errorf("jobstore: claim %s: %w", r.Message.JobID, err)
	}
	var limitErr *LimitError
	err = s.outboxTx(ctx, func(tx pgx.Tx) error {
		var err error
		j, err = claim(ctx, tx, lease, r)
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := createFromMessage(ctx, tx, r); err != nil {
			return err
		}
		j, err = claim(ctx, tx, lease, r)
		if errors.Is(err, ErrNotFound) {
			return ErrNotClaimable
		}
		return err
	})
	switch {
	case errors.As(err, &limitErr):
		return Job{}, Lease{}, s.refuseOverQuota(ctx, r, limitErr)
	case errors.Is(err, ErrNotClaimable), errors.Is(err, ErrUnknownUser), errors.Is(err, ErrLeaseHeld):
		return Job{}, Lease{}, err
	case err != nil:
		return Job{}, Lease{}, fmt.Errorf("jobstore: claim %s: %w", r.Message.JobID, err)
	}
	return j, lease, nil
}

// createFromMessage creates the job a foreign message names, if it does not exist yet (else
// the message is a stale copy: ErrNotClaimable).
func createFromMessage(ctx context.Context, tx pgx.Tx, r ClaimRequest) error {
	m := r.Message
	var jobExists, userExists bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cover_letter_jobs WHERE job_id = $1),
		EXISTS (SELECT 1 FROM users WHERE id = $2 FOR NO KEY UPDATE)`, m.JobID, m.UserID).Scan(&jobExists, &userExists)
	switch {
	case err != nil:
		return err
	case jobExists:
		return ErrNotClaimable
	case !userExists:
		return ErrUnknownUser
	}
	if err := checkLimits(ctx, tx, m.UserID, Limits{JobsPerMinute: r.Limits.JobsPerMinute}); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO cover_letter_jobs (job_id, user_id, job_description, cv_text, tone, traceparent)
		VALUES ($1, $2, $3, $4, $5, nullif($6, '')) ON CONFLICT (job_id) DO NOTHING`,
		m.JobID, m.UserID, m.JobDescription, m.CVText, m.Tone, r.TraceParent); err != nil {
		return fmt.Errorf("create job from message: %w", err)
	}
	return nil
}

// refuseOverQuota stores a foreign message's job as failed (over the quota), announces it and
// dead-letters the message, so that an operator may requeue it. It returns limitErr.
func (s *Store) refuseOverQuota(ctx context.Context, r ClaimRequest, limitErr *LimitError) error {
	m := r.Message
	msg := job.SafeText("refused: "+limitErr.Error(), job.MaxErrorBytes)
	err := s.outboxTx(ctx, func(tx pgx.Tx) error {
		j, err := scanJob(tx.QueryRow(ctx, `
			INSERT INTO cover_letter_jobs (job_id, user_id, job_description, cv_text, tone, traceparent,
			    status, error_message, completed_at)
			VALUES ($1, $2, $3, $4, $5, nullif($6, ''), 'failed', $7, now())
			ON CONFLICT (job_id) DO NOTHING
			RETURNING `+jobColumns, m.JobID, m.UserID, m.JobDescription, m.CVText, m.Tone, r.TraceParent, msg))
		if errors.Is(err, ErrNotFound) {
			return nil // a copy got there first
		}
		if err != nil {
			return err
		}
		return enqueueFailedByStore(ctx, tx, j, job.ReasonQuotaExceeded, msg)
	})
	if err != nil {
		return fmt.Errorf("jobstore: refuse %s over the quota: %w", m.JobID, err)
	}
	return limitErr
}

// claim takes the lease of a claimable job; a redelivery that finds the job held by a live
// process is ErrLeaseHeld.
func claim(ctx context.Context, db querier, lease Lease, r ClaimRequest) (Job, error) {
	j, err := scanJob(db.QueryRow(ctx, `
		UPDATE cover_letter_jobs AS j
		SET status = 'processing', attempts = attempts + CASE WHEN lease_token = $2 THEN 0 ELSE 1 END,
		    lease_token = $2, lease_owner = nullif($5, '00000000-0000-0000-0000-000000000000'::uuid),
		    lease_expires_at = now() + make_interval(secs => $3), run_after = NULL,
		    started_at = now(), updated_at = now()
		WHERE job_id = $1 AND (
		    (status = 'pending' AND (run_after IS NULL OR run_after <= now()))
		    OR (status = 'processing' AND lease_token = $2)
		    OR (status = 'processing' AND (lease_expires_at < now() OR ($4 AND NOT EXISTS (
		        SELECT 1 FROM worker_processes AS p
		        WHERE p.id = j.lease_owner AND p.seen_at > now() - make_interval(secs => $6))))))
		RETURNING `+jobColumns, lease.JobID, lease.Token, r.LeaseFor.Seconds(), r.Redelivered, r.Owner, r.OwnerDeadAfter.Seconds()))
	if !errors.Is(err, ErrNotFound) || !r.Redelivered {
		return j, err
	}
	var processing bool
	if err := db.QueryRow(ctx, `SELECT status = 'processing' FROM cover_letter_jobs WHERE job_id = $1`, lease.JobID).Scan(&processing); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return Job{}, ErrNotFound
		}
		return Job{}, err
	}
	if processing {
		return Job{}, ErrLeaseHeld
	}
	return Job{}, ErrNotClaimable
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

// maxLetterBytes bounds a stored letter: far more than any letter, far less than a runaway
// answer could hold.
const maxLetterBytes = 256 << 10

// Result is what the LLM produced.
type Result struct {
	CoverLetter      string
	PromptTokens     int
	CompletionTokens int
	Model            string
}

// Complete stores the letter and announces it, if the lease still holds (else ErrLeaseLost).
func (s *Store) Complete(ctx context.Context, l Lease, r Result, headers map[string]string) (Job, error) {
	return s.leased(ctx, "complete", l, `
		status = 'completed', cover_letter = $3, prompt_tokens = $4, completion_tokens = $5, model = $6,
		error_message = NULL, completed_at = now()`,
		[]any{job.SafeText(r.CoverLetter, maxLetterBytes), r.PromptTokens, r.CompletionTokens, job.SafeText(r.Model, 255)},
		func(tx pgx.Tx, j Job) error { return enqueueCompleted(ctx, tx, j, headers) })
}

// Retry puts the job back to pending with its last error and schedules its message for
// runAfter, if the lease still holds.
func (s *Store) Retry(ctx context.Context, l Lease, errMsg string, runAfter time.Time, headers map[string]string) (Job, error) {
	return s.leased(ctx, "retry", l, `status = 'pending', error_message = $3, run_after = $4`,
		[]any{job.SafeText(errMsg, job.MaxErrorBytes), runAfter},
		func(tx pgx.Tx, j Job) error { return enqueueGenerate(ctx, tx, j, headers, runAfter) })
}

// Defer puts the job back to pending and schedules its message for runAfter, if the lease
// still holds, when its LLM call was not made (the shared rate budget had no room soon
// enough): the claim stays in attempts but does not count against the attempt budget, and the
// job keeps its last error.
func (s *Store) Defer(ctx context.Context, l Lease, runAfter time.Time, headers map[string]string) (Job, error) {
	return s.leased(ctx, "defer", l, `status = 'pending', attempts_at_requeue = attempts_at_requeue + 1, run_after = $3`,
		[]any{runAfter},
		func(tx pgx.Tx, j Job) error { return enqueueGenerate(ctx, tx, j, headers, runAfter) })
}

// DeadLetter is a message to put on the DLQ as it was, with the reason in its headers.
type DeadLetter struct {
	Body    []byte
	Headers map[string]string
	Reason  string
	Error   string
}

func (d DeadLetter) message(id string) broker.Message {
	headers := make(map[string]string, len(d.Headers)+2)
	for k, v := range d.Headers {
		headers[k] = v
	}
	headers[job.HeaderDeathReason] = d.Reason
	headers[job.HeaderDeathError] = job.SafeText(d.Error, job.MaxErrorBytes)
	return broker.Message{RoutingKey: job.QueueDLQ, MessageID: id, Headers: headers, Body: d.Body}
}

// Fail marks the job failed for good with errMsg, announces it (with headers), and
// dead-letters its message, if the lease still holds.
func (s *Store) Fail(ctx context.Context, l Lease, errMsg string, headers map[string]string, dl DeadLetter) (Job, error) {
	return s.leased(ctx, "fail", l, `status = 'failed', error_message = $3, completed_at = now()`,
		[]any{job.SafeText(errMsg, job.MaxErrorBytes)},
		func(tx pgx.Tx, j Job) error { return enqueueFailed(ctx, tx, j, headers, dl) })
}

// Release gives a job back (pending, due now) when its worker stops before finishing it.
func (s *Store) Release(ctx context.Context, l Lease) error {
	tag, err := s.pool.Exec(ctx, `
		UPDATE cover_letter_jobs
		SET status = 'pending', lease_token = NULL, lease_expires_at = NULL, updated_at = now()
		WHERE job_id = $1 AND lease_token = $2 AND status = 'processing'`, l.JobID, l.Token)
	if err != nil {
		return fmt.Errorf("jobstore: release %s: %w", l.JobID, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrLeaseLost
	}
	return nil
}

// DeadLetterMessage puts a message that names no job it could process on the DLQ.
func (s *Store) DeadLetterMessage(ctx context.Context, id string, dl DeadLetter) error {
	if err := outbox.Insert(ctx, s.pool, dl.message(id), time.Time{}); err != nil {
		return fmt.Errorf("jobstore: dead-letter: %w", err)
	}
	s.outboxWrote()
	return nil
}

// transition is a change of one job's row and the messages that go with it.
type transition struct {
	update   string                  // UPDATE cover_letter_jobs ..., without RETURNING
	args     []any                   // update's parameters
	then     func(pgx.Tx, Job) error // writes the messages of the job update returned
	notFound func(tx pgx.Tx) error   // when update matched no row; nil: ErrNotFound
}

// apply runs t in one outbox transaction and returns the job as t.update left it.
func (s *Store) apply(ctx context.Context, t transition) (Job, error) {
	var j Job
	err := s.outboxTx(ctx, func(tx pgx.Tx) error {
		var err error
		j, err = scanJob(tx.QueryRow(ctx, t.update+`
			RETURNING `+jobColumns, t.args...))
		if errors.Is(err, ErrNotFound) && t.notFound != nil {
			return t.notFound(tx)
		}
		if err != nil {
			return err
		}
		return t.then(tx, j)
	})
	return j, err
}

// leased applies the transition of the job that l leases, if the lease still holds (else
// ErrLeaseLost): set, the SQL assignments whose parameters args are $3 on, and the release
// of the lease; then writes the job's messages. op names the transition in errors.
func (s *Store) leased(ctx context.Context, op string, l Lease, set string, args []any, then func(pgx.Tx, Job) error) (Job, error) {
	j, err := s.apply(ctx, transition{
		update: `
			UPDATE cover_letter_jobs
			SET ` + set + `, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
			WHERE job_id = $1 AND lease_token = $2 AND status = 'processing'`,
		args: append([]any{l.JobID, l.Token}, args...),
		then: then,
	})
	return j, leaseErr(op, l, err)
}

func leaseErr(op string, l Lease, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return ErrLeaseLost
	default:
		return fmt.Errorf("jobstore: %s %s: %w", op, l.JobID, err)
	}
}

// ErrFinal means the job already has its final status and cannot be cancelled.
var ErrFinal = errors.New("job already finished")

// Cancel cancels a user's pending or processing job: it becomes cancelled at once, its
// cancellation is announced on the completed queue, and a worker running it is told through
// a NOTIFY to stop (whatever it would store later is refused: its lease is gone). Another
// user's job is ErrNotFound; a finished one ErrFinal.
func (s *Store) Cancel(ctx context.Context, userID int64, jobID string, headers map[string]string) (Job, error) {
	j, err := s.apply(ctx, transition{
		update: `
			UPDATE cover_letter_jobs
			SET status = 'cancelled', error_message = 'cancelled by the user', lease_token = NULL, lease_expires_at = NULL,
			    run_after = NULL, completed_at = now(), updated_at = now()
			WHERE job_id = $1 AND user_id = $2 AND status IN ('pending', 'processing')`,
		args: []any{jobID, userID},
		notFound: func(tx pgx.Tx) error {
			if _, err := scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM cover_letter_jobs WHERE job_id = $1 AND user_id = $2`, jobID, userID)); err != nil {
				return err
			}
			return ErrFinal
		},
		then: func(tx pgx.Tx, j Job) error {
			if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, database.JobCancelledChannel, jobID); err != nil {
				return err
			}
			return enqueueCompleted(ctx, tx, j, headers)
		},
	})
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrFinal) {
		return Job{}, fmt.Errorf("jobstore: cancel %s: %w", jobID, err)
	}
	return j, err
}
