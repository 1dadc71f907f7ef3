package jobstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/careerops/jobs/internal/broker"
	"github.com/careerops/jobs/internal/database"
	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/outbox"
)

// Table is where a kind keeps its jobs: a table with the lifecycle columns (job_id, user_id,
// status, error_message, attempts, attempts_at_requeue, lease_token, lease_owner,
// lease_expires_at, run_after, traceparent and the times) and the SQL that maps the kind's
// arguments and result to its other columns.
type Table struct {
	Name   string // the table
	Filter string // SQL condition on a row: it is one of this kind's ("" every row is)
	Args   string // SQL: a row's arguments, a jsonb object
	Result string // SQL: a row's result as jsonb, NULL until it has one
	// Insert adds a pending job, doing nothing if the job_id exists: $1 job_id, $2 user_id,
	// $3 the arguments (jsonb), $4 the traceparent ('' for none), $5 the kind.
	Insert string
	// Store is the SQL assignments that keep the result, {result} (jsonb), in the row.
	Store string
}

// SharedTable is the table jobs, which keeps the jobs of every kind without a table of its
// own: arguments and result as JSON, beside the lifecycle columns.
func SharedTable(kind string) Table {
	return Table{
		Name: "jobs", Filter: "kind = " + quoteLiteral(kind), Args: "args", Result: "result",
		Insert: `INSERT INTO jobs (job_id, user_id, args, traceparent, kind) VALUES ($1, $2, $3, nullif($4, ''), $5)
			ON CONFLICT (job_id) DO NOTHING`,
		Store: "result = {result}",
	}
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Spec is a kind of job as the store keeps it.
type Spec struct {
	// Name is the kind, and the queue of its messages; its DLQ is job.DLQ(Name).
	Name  string
	Table Table
	// Admit, if set, decides whether a job another service asked for (its message came
	// first, the row is created from it) may run: a *LimitError refuses it, failed at once and
	// dead-lettered.
	Admit func(ctx context.Context, tx pgx.Tx, userID int64) error
	// Finished, if set, writes the messages that announce jobs' final status (completed,
	// failed or cancelled), in the transaction that stores it: one job, or a batch of
	// completed ones.
	Finished func(ctx context.Context, tx pgx.Tx, jobs []Final) error
}

// Final is a job that reached its final status, and the headers (trace context) its
// announcements carry.
type Final struct {
	Run
	Headers map[string]string
}

// Run is one job of any kind as its worker sees it.
type Run struct {
	ID            string
	UserID        int64
	Status        job.Status
	Args          json.RawMessage
	Result        json.RawMessage // nil until completed
	Error         string
	Attempts      int
	AttemptsSince int // attempts since the last DLQ requeue: the retry budget counts these
	TraceParent   string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	StartedAt     *time.Time
	CompletedAt   *time.Time
}

// Runs are the jobs of one kind: claimed, completed, retried, failed, released, reaped and
// requeued the same way for every kind.
type Runs struct {
	s       *Store
	k       Spec
	columns string
}

// Runs returns the jobs of the kind k.
func (s *Store) Runs(k Spec) *Runs {
	return &Runs{s: s, k: k, columns: runColumns(k.Table)}
}

// runColumns are the columns of a Run in table t.
func runColumns(t Table) string {
	return `job_id, user_id, status, ` + t.Args + `, ` + t.Result + `,
		coalesce(error_message, ''), attempts, attempts - attempts_at_requeue, coalesce(traceparent, ''),
		created_at, updated_at, started_at, completed_at`
}

// Kind is the kind's name.
func (r *Runs) Kind() string { return r.k.Name }

// scanRun scans a row of {cols}, after the columns of before, if any.
func scanRun(row pgx.Row, before ...any) (Run, error) {
	var (
		j      Run
		result []byte
	)
	err := row.Scan(append(before, &j.ID, &j.UserID, &j.Status, &j.Args, &result, &j.Error, &j.Attempts, &j.AttemptsSince,
		&j.TraceParent, &j.CreatedAt, &j.UpdatedAt, &j.StartedAt, &j.CompletedAt)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, ErrNotFound
	}
	if err != nil {
		return Run{}, fmt.Errorf("jobstore: scan job: %w", err)
	}
	if len(result) > 0 {
		j.Result = result
	}
	return j, nil
}

// sql replaces {t} in q with the kind's table and {cols} with its columns.
func (r *Runs) sql(q string) string {
	return strings.NewReplacer("{t}", r.k.Table.Name, "{cols}", r.columns).Replace(q)
}

// NewRun is a job to enqueue.
type NewRun struct {
	ID     string // empty: a new UUID
	UserID int64
	Args   json.RawMessage
	// Headers travel with the message (trace context).
	Headers map[string]string
}

// Enqueue adds a pending job of kind k and its message in tx, the transaction of whatever
// asks for it (another job's outcome, say): both or neither are committed. A job whose id
// exists already is left as it is, with no new message: a deterministic id makes a request
// idempotent. It returns the job's id; ErrUnknownUser if the user does not exist.
func Enqueue(ctx context.Context, tx pgx.Tx, k Spec, n NewRun) (string, error) {
	if n.ID == "" {
		n.ID = uuid.NewString()
	}
	tag, err := tx.Exec(ctx, k.Table.Insert, n.ID, n.UserID, n.Args, n.Headers["traceparent"], k.Name)
	switch {
	case isForeignKey(err, ""):
		return "", ErrUnknownUser
	case err != nil:
		return "", fmt.Errorf("jobstore: enqueue %s: %w", k.Name, err)
	case tag.RowsAffected() == 0:
		return n.ID, nil
	}
	r := &Runs{k: k, columns: runColumns(k.Table)}
	j, err := scanRun(tx.QueryRow(ctx, r.sql(`SELECT {cols} FROM {t} WHERE job_id = $1`), n.ID))
	if err != nil {
		return "", err
	}
	return n.ID, r.enqueue(ctx, tx, j, n.Headers, time.Time{})
}

// Enqueue is the package's Enqueue for the kind of r.
func (r *Runs) Enqueue(ctx context.Context, tx pgx.Tx, n NewRun) (string, error) {
	return Enqueue(ctx, tx, r.k, n)
}

// EnqueueNow is Enqueue in a transaction of its own.
func (r *Runs) EnqueueNow(ctx context.Context, n NewRun) (string, error) {
	var id string
	err := r.s.outboxTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		id, err = r.Enqueue(ctx, tx, n)
		return err
	})
	return id, err
}

// enqueue writes the job's message to the outbox, to be sent at at (zero: now).
func (r *Runs) enqueue(ctx context.Context, tx pgx.Tx, j Run, headers map[string]string, at time.Time) error {
	m, err := message(r.k.Name, j.ID, j.UserID, j.CreatedAt, j.Attempts, j.Args, headers, at)
	if err != nil {
		return err
	}
	return outbox.Insert(ctx, tx, m, at)
}

// message is a job's message for the queue of its kind, due at at (zero: now).
func message(kind, id string, userID int64, createdAt time.Time, attempts int, args json.RawMessage,
	headers map[string]string, at time.Time) (broker.Message, error) {
	body, err := job.EncodeMessage(job.Envelope{JobID: id, UserID: userID, CreatedAt: createdAt, RetryCount: attempts}, args)
	if err != nil {
		return broker.Message{}, fmt.Errorf("encode message: %w", err)
	}
	return outboxMessage(kind, id, attempts, body, headers, at), nil
}

// outboxMessage is the message with body of a job with id for the queue of kind, its
// attempts-th, due at at (zero: now).
func outboxMessage(kind, id string, attempts int, body []byte, headers map[string]string, at time.Time) broker.Message {
	due := at
	if due.IsZero() {
		due = time.Now()
	}
	return broker.Message{
		RoutingKey: kind,
		MessageID:  id + "/" + strconv.Itoa(attempts),
		Headers:    withHeaders(headers, job.HeaderJobID, id, job.HeaderDueAt, due.UTC().Format(time.RFC3339Nano)),
		Body:       body,
	}
}

// finished writes the kind's announcements of the jobs' final status.
func (r *Runs) finished(ctx context.Context, tx pgx.Tx, jobs ...Final) error {
	if r.k.Finished == nil || len(jobs) == 0 {
		return nil
	}
	return r.k.Finished(ctx, tx, jobs)
}

// failed announces the failed job j and puts its dead letter dl on the kind's DLQ, so that
// an operator may requeue it.
func (r *Runs) failed(ctx context.Context, tx pgx.Tx, j Run, headers map[string]string, dl DeadLetter) error {
	if err := r.finished(ctx, tx, Final{j, headers}); err != nil {
		return err
	}
	return outbox.Insert(ctx, tx, dl.message(r.k.Name, j.ID+"/dead"), time.Time{})
}

// failedByStore is failed for a job the store fails itself, with no worker's message to
// dead-letter: its dead letter carries the job's message, reason and errMsg.
func (r *Runs) failedByStore(ctx context.Context, tx pgx.Tx, j Run, reason, errMsg string) error {
	m, err := message(r.k.Name, j.ID, j.UserID, j.CreatedAt, j.Attempts, j.Args, nil, time.Time{})
	if err != nil {
		return err
	}
	dl := DeadLetter{Body: m.Body, Headers: map[string]string{job.HeaderJobID: j.ID}, Reason: reason, Error: errMsg}
	return r.failed(ctx, tx, j, nil, dl)
}

// DeadLetter is a message to put on the DLQ as it was, with the reason in its headers.
type DeadLetter struct {
	Body    []byte
	Headers map[string]string
	Reason  string
	Error   string
}

func (d DeadLetter) message(kind, id string) broker.Message {
	headers := make(map[string]string, len(d.Headers)+2)
	for k, v := range d.Headers {
		headers[k] = v
	}
	headers[job.HeaderDeathReason] = d.Reason
	headers[job.HeaderDeathError] = job.SafeText(d.Error, job.MaxErrorBytes)
	return broker.Message{RoutingKey: job.DLQ(kind), MessageID: id, Headers: headers, Body: d.Body}
}

// DeadLetterMessage puts a message that names no job it could process on the kind's DLQ.
func (r *Runs) DeadLetterMessage(ctx context.Context, id string, dl DeadLetter) error {
	if err := outbox.Insert(ctx, r.s.pool, dl.message(r.k.Name, id), time.Time{}); err != nil {
		return fmt.Errorf("jobstore: dead-letter: %w", err)
	}
	r.s.outboxWrote()
	return nil
}

// transition is a change of one job's row and the messages that go with it.
type transition struct {
	update   string                                   // UPDATE {t} ..., without RETURNING
	args     []any                                    // update's parameters
	then     func(context.Context, pgx.Tx, Run) error // writes the messages of the job update returned
	notFound func(context.Context, pgx.Tx) error      // when update matched no row; nil: ErrNotFound
}

// apply runs t in one outbox transaction and returns the job as t.update left it.
func (r *Runs) apply(ctx context.Context, t transition) (Run, error) {
	var j Run
	err := r.s.outboxTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		j, err = scanRun(tx.QueryRow(ctx, r.sql(t.update+` RETURNING {cols}`), t.args...))
		if errors.Is(err, ErrNotFound) && t.notFound != nil {
			return t.notFound(ctx, tx)
		}
		if err != nil {
			return err
		}
		return t.then(ctx, tx, j)
	})
	return j, err
}

// leased applies the transition of the job that l leases, if the lease still holds (else
// ErrLeaseLost): set, the SQL assignments whose parameters args are $3 on, and the release
// of the lease; then writes the job's messages. op names the transition in errors.
func (r *Runs) leased(ctx context.Context, op string, l Lease, set string, args []any, then func(context.Context, pgx.Tx, Run) error) (Run, error) {
	j, err := r.apply(ctx, transition{
		update: `
			UPDATE {t}
			SET ` + set + `, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
			WHERE job_id = $1 AND lease_token = $2 AND status = 'processing'`,
		args:     append([]any{l.JobID, l.Token}, args...),
		then:     then,
		notFound: func(ctx context.Context, tx pgx.Tx) error { return r.lost(ctx, tx, l.JobID) },
	})
	return j, leaseErr(op, l, err)
}

// lost says why a step under a lease of job id found none: ErrClaimLost if the job is
// pending, as before its claim (see claimBatch), else ErrNotFound (another holds it, or it
// ended).
func (r *Runs) lost(ctx context.Context, db Querier, id string) error {
	var pending bool
	err := db.QueryRow(ctx, r.sql(`SELECT status = 'pending' FROM {t} WHERE job_id = $1`), id).Scan(&pending)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return ErrNotFound
	case err != nil:
		return err
	case pending:
		return ErrClaimLost
	}
	return ErrNotFound
}

// leaseErr is the error of a step under lease l: ErrLeaseLost or ErrClaimLost if the lease
// is gone.
func leaseErr(op string, l Lease, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrClaimLost):
		return ErrClaimLost
	case errors.Is(err, ErrNotFound):
		return ErrLeaseLost
	default:
		return fmt.Errorf("jobstore: %s %s: %w", op, l.JobID, err)
	}
}

// Complete stores the job's result and announces it, if the lease still holds (else
// ErrLeaseLost).
func (r *Runs) Complete(ctx context.Context, l Lease, result json.RawMessage, headers map[string]string) (Run, error) {
	c, err := newCompletion(l, result, headers)
	if err != nil {
		return Run{}, err
	}
	a := r.complete(ctx, []completion{c})[0]
	return a.v, a.err
}

// Retry puts the job back to pending with its last error and schedules its message for
// runAfter, if the lease still holds.
func (r *Runs) Retry(ctx context.Context, l Lease, errMsg string, runAfter time.Time, headers map[string]string) (Run, error) {
	return r.leased(ctx, "retry", l, `status = 'pending', error_message = $3, run_after = $4`,
		[]any{job.SafeText(errMsg, job.MaxErrorBytes), runAfter},
		func(ctx context.Context, tx pgx.Tx, j Run) error { return r.enqueue(ctx, tx, j, headers, runAfter) })
}

// Defer puts the job back to pending and schedules its message for runAfter, if the lease
// still holds, when its work was not tried (a rate budget had no room soon enough): the claim
// stays in attempts but does not count against the attempt budget, and the job keeps its
// last error.
func (r *Runs) Defer(ctx context.Context, l Lease, runAfter time.Time, headers map[string]string) (Run, error) {
	return r.leased(ctx, "defer", l, `status = 'pending', attempts_at_requeue = attempts_at_requeue + 1, run_after = $3`,
		[]any{runAfter},
		func(ctx context.Context, tx pgx.Tx, j Run) error { return r.enqueue(ctx, tx, j, headers, runAfter) })
}

// Fail marks the job failed for good with errMsg, announces it (with headers), and
// dead-letters its message, if the lease still holds.
func (r *Runs) Fail(ctx context.Context, l Lease, errMsg string, headers map[string]string, dl DeadLetter) (Run, error) {
	return r.leased(ctx, "fail", l, `status = 'failed', error_message = $3, completed_at = now()`,
		[]any{job.SafeText(errMsg, job.MaxErrorBytes)},
		func(ctx context.Context, tx pgx.Tx, j Run) error { return r.failed(ctx, tx, j, headers, dl) })
}

// Release gives a job back (pending, due now) when its worker stops before finishing it.
func (r *Runs) Release(ctx context.Context, l Lease) error {
	tag, err := r.s.pool.Exec(ctx, r.sql(`
		UPDATE {t}
		SET status = 'pending', lease_token = NULL, lease_expires_at = NULL, updated_at = now()
		WHERE job_id = $1 AND lease_token = $2 AND status = 'processing'`), l.JobID, l.Token)
	if err != nil {
		return fmt.Errorf("jobstore: release %s: %w", l.JobID, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrLeaseLost
	}
	return nil
}

// cancelSet are the SQL assignments that cancel an open job: the lease is gone, so whatever
// its worker would store later is refused.
const cancelSet = `status = 'cancelled', error_message = 'cancelled by the user', lease_token = NULL, lease_expires_at = NULL,
	run_after = NULL, completed_at = now(), updated_at = now()`

// notifyCancelled tells, when tx commits, the workers running the jobs ids to stop them
// (NOTIFY on database.JobCancelledChannel, one per job).
func notifyCancelled(ctx context.Context, tx pgx.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, id) FROM unnest($2::text[]) AS id`, database.JobCancelledChannel, ids)
	return err
}

// Cancelled returns those of the jobs ids that are cancelled.
func (r *Runs) Cancelled(ctx context.Context, ids []string) ([]string, error) {
	rows, err := r.s.pool.Query(ctx, r.sql(`SELECT job_id FROM {t} WHERE job_id = ANY($1) AND status = 'cancelled'`), ids)
	if err != nil {
		return nil, fmt.Errorf("jobstore: cancelled jobs: %w", err)
	}
	cancelled, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("jobstore: cancelled jobs: %w", err)
	}
	return cancelled, nil
}

// ErrFinal means the job already has its final status and cannot be cancelled.
var ErrFinal = errors.New("job already finished")

// Cancel cancels a user's pending or processing job: it becomes cancelled at once, its
// cancellation is announced, and a worker running it is told through a NOTIFY to stop
// (whatever it would store later is refused: its lease is gone). Another user's job is
// ErrNotFound; a finished one ErrFinal.
func (r *Runs) Cancel(ctx context.Context, userID int64, jobID string, headers map[string]string) (Run, error) {
	j, err := r.apply(ctx, transition{
		update: `
			UPDATE {t} SET ` + cancelSet + `
			WHERE job_id = $1 AND user_id = $2 AND status IN ('pending', 'processing')`,
		args: []any{jobID, userID},
		notFound: func(ctx context.Context, tx pgx.Tx) error {
			if _, err := scanRun(tx.QueryRow(ctx, r.sql(`SELECT {cols} FROM {t} WHERE job_id = $1 AND user_id = $2`), jobID, userID)); err != nil {
				return err
			}
			return ErrFinal
		},
		then: func(ctx context.Context, tx pgx.Tx, j Run) error {
			if err := notifyCancelled(ctx, tx, []string{jobID}); err != nil {
				return err
			}
			return r.finished(ctx, tx, Final{j, headers})
		},
	})
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrFinal) {
		return Run{}, fmt.Errorf("jobstore: cancel %s: %w", jobID, err)
	}
	return j, err
}

// Get returns a job of the kind, whoever owns it (for operators); ErrNotFound if none.
func (r *Runs) Get(ctx context.Context, jobID string) (Run, error) {
	j, err := scanRun(r.s.pool.QueryRow(ctx, r.sql(`SELECT {cols} FROM {t} WHERE job_id = $1`), jobID))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Run{}, fmt.Errorf("jobstore: get %s: %w", jobID, err)
	}
	return j, err
}

// withoutNUL replaces the escaped NULs (\u0000) of a JSON text, which PostgreSQL's jsonb
// refuses, with U+FFFD.
func withoutNUL(b []byte) []byte {
	const nul, replacement = `u0000`, `ufffd`
	if !bytes.Contains(b, []byte(`\`+nul)) { // the usual case: one fast scan
		return b
	}
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if bytes.HasPrefix(b[i+1:], []byte(nul)) {
			if out == nil {
				out = append([]byte(nil), b...)
			}
			copy(out[i+1:], replacement)
		}
		i++ // the escaped character
	}
	if out == nil {
		return b
	}
	return out
}
