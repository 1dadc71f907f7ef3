// Package jobstore keeps jobs of every kind in PostgreSQL (Runs: the lifecycle any kind
// shares, in the kind's Table) and serves the cover-letter API (Create, Get, List). Every
// change of a job's state is one transaction that also writes, through the outbox, the
// messages announcing it, and every worker transition is guarded by the job's lease so that a
// redelivered message can never produce a second visible result.
package jobstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/careerops/jobs/internal/job"
	"github.com/careerops/jobs/internal/outbox"
)

// Errors the store returns; callers test them with errors.Is.
var (
	ErrNotFound            = errors.New("job not found")
	ErrUnknownUser         = errors.New("unknown user")
	ErrIdempotencyConflict = errors.New("idempotency key reused with a different request")
	ErrNotClaimable        = errors.New("job is not claimable")
	ErrLeaseLost           = errors.New("job lease lost")
	// ErrClaimLost: the lease is gone and the job is pending, as before its claim (a claim
	// commits without waiting for its flush; a PostgreSQL crash may undo it). Its message may
	// be the only one: give it back.
	ErrClaimLost     = errors.New("job claim lost: the job is pending again")
	ErrLeaseHeld     = errors.New("job held by a live worker")
	ErrNotInDLQState = errors.New("job is not failed")
)

// Job is one row of cover_letter_jobs as the api and the worker see it.
type Job struct {
	ID               string
	UserID           int64
	Status           job.Status
	JobDescription   string
	CVText           string
	Tone             job.Tone
	CoverLetter      string
	Error            string
	Attempts         int
	AttemptsSince    int // attempts since the last DLQ requeue: the retry budget counts these
	PromptTokens     int
	CompletionTokens int
	Model            string
	TraceParent      string
	CreatedAt        time.Time
	UpdatedAt        time.Time
	StartedAt        *time.Time
	CompletedAt      *time.Time
}

// Store is the job store.
type Store struct {
	pool        *pgxpool.Pool
	outboxWrote func()
	handoff     *outbox.Handoff // nil: the relay publishes every row
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool, outboxWrote: func() {}} }

// OnOutboxWrite sets what to call after a transaction committed outbox rows: this process's
// relay's Wake, so the message goes out at once.
func (s *Store) OnOutboxWrite(f func()) { s.outboxWrote = f }

// HandOff makes the messages due at once that the store's transactions write go to h after
// their commit, instead of to the relay (see outbox.Handoff).
func (s *Store) HandOff(h *outbox.Handoff) { s.handoff = h }

// Pool exposes the pool for health checks.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

const jobColumns = `job_id, user_id, status, job_description, cv_text, tone,
	coalesce(cover_letter, ''), coalesce(error_message, ''), attempts, attempts - attempts_at_requeue,
	coalesce(prompt_tokens, 0), coalesce(completion_tokens, 0), coalesce(model, ''), coalesce(traceparent, ''),
	created_at, updated_at, started_at, completed_at`

// scanJob reads jobColumns, then any extra columns into extra.
func scanJob(row pgx.Row, extra ...any) (Job, error) {
	var j Job
	err := row.Scan(append([]any{&j.ID, &j.UserID, &j.Status, &j.JobDescription, &j.CVText, &j.Tone,
		&j.CoverLetter, &j.Error, &j.Attempts, &j.AttemptsSince,
		&j.PromptTokens, &j.CompletionTokens, &j.Model, &j.TraceParent,
		&j.CreatedAt, &j.UpdatedAt, &j.StartedAt, &j.CompletedAt}, extra...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, ErrNotFound
	}
	if err != nil {
		return Job{}, fmt.Errorf("jobstore: scan job: %w", err)
	}
	return j, nil
}

// outboxTx runs fn in a transaction, committing if it returns nil. The outbox rows fn writes
// with the context it is given go to the hand-off after the commit; the relay is woken if
// rows are left for it.
func (s *Store) outboxTx(ctx context.Context, fn func(context.Context, pgx.Tx) error) error {
	ctx, held := s.handoff.Collect(ctx)
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(ctx, tx) }); err != nil {
		return err
	}
	if held.Committed() {
		s.outboxWrote()
	}
	return nil
}

// AddUser creates a user and returns its id.
func (s *Store) AddUser(ctx context.Context, email string) (int64, error) {
	// Users first seen in messages from other services are inserted with their own ids, which
	// the sequence does not know about: skip past any id already taken.
	for range 100 {
		var id int64
		err := s.pool.QueryRow(ctx, `INSERT INTO users (email) VALUES ($1) RETURNING id`, email).Scan(&id)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "users_pkey" {
			continue
		}
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return 0, fmt.Errorf("jobstore: user %q already exists", email)
		}
		if err != nil {
			return 0, fmt.Errorf("jobstore: add user: %w", err)
		}
		return id, nil
	}
	return 0, errors.New("jobstore: add user: no free id")
}

// UserExists reports whether a user with id exists.
func (s *Store) UserExists(ctx context.Context, id int64) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, id).Scan(&ok); err != nil {
		return false, fmt.Errorf("jobstore: look up user: %w", err)
	}
	return ok, nil
}

// Get returns a user's job. Another user's job is ErrNotFound.
func (s *Store) Get(ctx context.Context, userID int64, jobID string) (Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM cover_letter_jobs WHERE job_id = $1 AND user_id = $2`, jobID, userID))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Job{}, fmt.Errorf("jobstore: get %s: %w", jobID, err)
	}
	return j, err
}

// GetAny returns a job whoever owns it (for operators and tests).
func (s *Store) GetAny(ctx context.Context, jobID string) (Job, error) {
	return scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM cover_letter_jobs WHERE job_id = $1`, jobID))
}

// GetMany returns the jobs of ids that exist, whoever owns them, in one query: a replica's
// event streams reread all the jobs they follow with it.
func (s *Store) GetMany(ctx context.Context, ids []string) ([]Job, error) {
	return s.queryJobs(ctx, "get jobs", `SELECT `+jobColumns+` FROM cover_letter_jobs WHERE job_id = ANY($1)`, ids)
}

// queryJobs runs a query of jobColumns; op names it in errors.
func (s *Store) queryJobs(ctx context.Context, op, query string, args ...any) ([]Job, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("jobstore: %s: %w", op, err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) { return scanJob(r) })
	if err != nil {
		return nil, fmt.Errorf("jobstore: %s: %w", op, err)
	}
	return jobs, nil
}

// Cursor marks a place in a user's list of jobs, newest first.
type Cursor struct {
	CreatedAt time.Time
	RowID     int64
}

// ListParams selects a page of a user's jobs.
type ListParams struct {
	UserID int64
	Status job.Status // empty: any
	Limit  int
	After  *Cursor
}

// List returns a page of a user's jobs, newest first, and the cursor of the next page (nil on
// the last page).
func (s *Store) List(ctx context.Context, p ListParams) ([]Job, *Cursor, error) {
	args := []any{p.UserID, p.Limit + 1}
	where := "user_id = $1"
	if p.Status != "" {
		args = append(args, p.Status)
		where += fmt.Sprintf(" AND status = $%d", len(args))
	}
	if p.After != nil {
		args = append(args, p.After.CreatedAt, p.After.RowID)
		where += fmt.Sprintf(" AND (created_at, id) < ($%d, $%d)", len(args)-1, len(args))
	}
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+`, id FROM cover_letter_jobs WHERE `+where+
		` ORDER BY created_at DESC, id DESC LIMIT $2`, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("jobstore: list: %w", err)
	}
	defer rows.Close()
	var (
		jobs   []Job
		rowIDs []int64
	)
	for rows.Next() {
		var rowID int64
		j, err := scanJob(rows, &rowID)
		if err != nil {
			return nil, nil, fmt.Errorf("jobstore: list: %w", err)
		}
		jobs = append(jobs, j)
		rowIDs = append(rowIDs, rowID)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("jobstore: list: %w", err)
	}
	if len(jobs) <= p.Limit {
		return jobs, nil, nil
	}
	last := p.Limit - 1
	return jobs[:p.Limit], &Cursor{CreatedAt: jobs[last].CreatedAt, RowID: rowIDs[last]}, nil
}
